import type { Command } from 'commander'
import { type EventKind, type RecordedEvent, Forbidden, Unavailable, validateName } from '@eventplane/core'
import {
  JS_API,
  type LogFilterOptions,
  STREAM_NAME,
  type UntrustedLogMessage,
  acceptLogMessage,
  ensureConsumer,
  isJsApiError,
  logFilter,
  subscribe,
} from '@eventplane/bus-nats'
import { type Consumer, type JsMsg, jetstream, jetstreamManager } from '@nats-io/jetstream'
import type { NatsConnection } from '@nats-io/transport-node'
import { toEventplaneError } from '../exit-codes.ts'
import { eventRecord, liveLine } from '../format.ts'
import { eventMatches, filterOptions, logFilterFrom } from '../log-filter.ts'
import { type CommandKit, domainOption, intOption, tenantOption, helpAfter } from '../command-kit.ts'
import type { Session } from '../session.ts'
import { closedFailure } from '../services/connection-closed.ts'
import { findRunnable } from '../domain.ts'
import { aborted, runnerOps, startController, startProjection } from '../runners.ts'
import { PROJECTOR_ROLE } from '@eventplane/runtime'
import { ROLES } from '@eventplane/store-pg'

interface SubscribeOptions {
  kind?: EventKind
  category?: string
  consumer?: string
  count?: number
  showActor?: boolean
}

/** How long one pull waits for a message in counted mode, so SIGINT is noticed within it. */
const PULL_EXPIRES_MS = 1000
/** JetStream API error: consumer not found (nats-server errors.json). */

/**
 * The durable consumer `name`: an existing one as it is (a tenant's consumers
 * are provisioned by `evtctl tenant add`; a tenant cannot create any), else
 * created with `filter` (service users, servers without accounts).
 */
async function openConsumer(nc: NatsConnection, name: string, filter: LogFilterOptions): Promise<Consumer> {
  const js = jetstream(nc)
  try {
    return await js.consumers.get(STREAM_NAME, name)
  } catch (e) {
    if (!isJsApiError(e, JS_API.consumerNotFound)) throw e
  }
  try {
    await ensureConsumer(await jetstreamManager(nc), { name, filter })
  } catch (e) {
    const typed = await toEventplaneError(e)
    if (typed.code !== 'bus.forbidden') throw e
    throw new Forbidden(
      'bus.forbidden',
      `consumer ${name} does not exist and this user may not create it (tenant consumers are made by evtctl tenant add)`,
      { cause: e },
    )
  }
  return js.consumers.get(STREAM_NAME, name)
}

/**
 * Without a name: a raw durable consumer (`<tenant>_tail` by default, one of
 * the consumers a tenant has), printing and acking each event, history
 * first; the next run resumes after the last acked event. `--kind` and
 * `--category` narrow what is printed when the consumer's own filter is
 * wider (a tenant's consumers see all its events): the others are acked and
 * skipped. With `--count n` it pulls one message at a time, so no extra
 * message is left un-acked (and held back from the next run until its ack
 * wait expires). A message the relay did not publish as it is, is terminated.
 */
async function rawConsumer(session: Session, opts: SubscribeOptions): Promise<void> {
  const filter = logFilterFrom(session.config, opts)
  const name = validateName('consumer', opts.consumer ?? `${session.config.tenant ?? 'evtctl'}_tail`)
  const view = { showActor: opts.showActor === true }
  const nc = await session.nats(session.config.tenant)
  const consumer = await openConsumer(nc, name, filter)
  const show = (event: RecordedEvent, seq: number, redelivered: boolean): void => {
    if (eventMatches(event, filter))
      session.out.emit({ ...eventRecord(event, view), seq, redelivered }, () => liveLine(event, view))
  }
  session.log.info({ consumer: name, filter: logFilter(filter) }, 'subscription ready')

  // Ended by the server closing the connection (its user revoked), not by Ctrl-C or --count: say so.
  const closedUnder = (cause?: unknown): Promise<unknown> => closedFailure(nc, 'subscribe', session.natsIdentity, cause)
  if (opts.count !== undefined) {
    for (let seen = 0; seen < opts.count && !session.signal?.aborted; ) {
      let msg: JsMsg | null
      try {
        msg = await consumer.next({ expires: PULL_EXPIRES_MS })
      } catch (e) {
        if (session.signal?.aborted) return
        throw await closedUnder(isHeartbeatsMissed(e) ? serverSilent(name, e) : e)
      }
      if (msg === null) continue
      let event: RecordedEvent
      try {
        event = acceptLogMessage(msg)
      } catch (e) {
        session.log.error(
          { consumer: name, seq: msg.seq, ...(e as UntrustedLogMessage).details },
          'untrusted log message terminated',
        )
        msg.term() // bare: nats-server 2.9 ignores `+TERM <reason>`
        continue
      }
      show(event, msg.seq, msg.redelivered)
      await msg.ackAck().catch(async (e: unknown) => {
        throw await closedUnder(e)
      })
      if (eventMatches(event, filter)) seen += 1
    }
    return
  }
  const subscription = await subscribe(jetstream(nc), {
    consumer: name,
    logger: session.log,
    ...(session.signal ? { signal: session.signal } : {}),
  })
  session.onClose(() => subscription.stop())
  try {
    for await (const delivery of subscription) {
      show(delivery.event, delivery.seq, delivery.redelivered)
      await delivery.ack()
    }
  } catch (e) {
    throw await closedUnder(e)
  }
  if (nc.isClosed() && session.signal?.aborted !== true) throw await closedUnder()
}

/** nats.js's failure of a pull whose server sent neither messages nor its idle heartbeats. */
const isHeartbeatsMissed = (e: unknown): boolean => e instanceof Error && e.message === 'heartbeats missed'

/** A pull the server stopped answering (a stalled server or path): `bus.unavailable`, exit 3, for a retry later. */
const serverSilent = (consumer: string, cause: unknown): Unavailable =>
  new Unavailable('bus.unavailable', `consumer ${consumer}: the NATS server stopped answering (heartbeats missed)`, {
    cause,
  })

/** Runs a projection or controller of the domain until SIGINT/SIGTERM (or until it fails). */
async function runNamed(session: Session, name: string): Promise<void> {
  const domain = await session.domain('subscribe <name>')
  const runnable = findRunnable(domain, name)
  const ops = runnerOps(session)
  const part =
    runnable.kind === 'projection'
      ? await startProjection(session, runnable.projection, ops.metrics)
      : await startController(session, runnable.controller, domain.registry(), ops.metrics)
  const server = await ops.serve(runnable.kind === 'projection' ? PROJECTOR_ROLE : ROLES.factWriter)
  session.out.emit(
    { ready: true, kind: runnable.kind, name: part.name, ...(server ? { ops: server.url } : {}) },
    () => `ready: ${part.detail}${server ? `, ops on ${server.url}` : ''}; Ctrl-C to stop`,
  )
  await Promise.race([aborted(session.signal), part.failed])
  await part.stop()
  session.out.emit({ stopped: true, name: part.name }, () => 'stopped')
}

/** `evtctl subscribe [name]`: run a named projection or controller, or tail through a durable consumer. */
export function registerSubscribe(program: Command, kit: CommandKit): void {
  const command = program
    .command('subscribe')
    .description(
      'run a projection or controller of the domain by name; without a name, consume the log through a durable consumer',
    )
    .argument('[name]', "projection or controller name (one of the domain's)")
    .addOption(domainOption())
    .addOption(tenantOption())
    .option('--consumer <name>', 'durable consumer name for the raw mode (default <tenant>_tail)')
    .option('--count <n>', 'exit after n events (raw mode)', intOption('--count', 1))
    .option('--show-actor', 'include caused_by (the principal) in raw mode')
  for (const option of filterOptions()) command.addOption(option)
  command
    .addHelpText(
      'after',
      helpAfter(
        'Examples:',
        '  $ evtctl subscribe --tenant acme --consumer acme_tail --count 10',
        '  $ evtctl subscribe deployment_status --domain @eventplane/example-deployments',
        '  $ evtctl subscribe deployments --domain @eventplane/example-deployments',
      ),
    )
    .action(
      kit.action(async (session, cmd) => {
        const name = cmd.args[0]
        if (name === undefined) return rawConsumer(session, cmd.opts<SubscribeOptions>())
        await runNamed(session, name)
      }),
    )
}
