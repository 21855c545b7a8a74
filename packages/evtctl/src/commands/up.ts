import { setTimeout as sleep } from 'node:timers/promises'
import type { Command } from 'commander'
import { EventplaneError, validateName } from '@eventplane/core'
import { PgEventStore, ROLES } from '@eventplane/store-pg'
import { Relay, SUBMIT_SUBJECTS, opsConfigFromEnv, processMetrics, serveOps, startGateway } from '@eventplane/bus-nats'
import { type CommandKit, intOption } from '../program.ts'
import { CONTROLLERS, PROJECTIONS, domainRegistry } from '../domain.ts'
import { requireJetStream } from '../jetstream-check.ts'
import { type RunningPart, aborted, startController, startProjection } from '../runners.ts'
import { DEFAULT_RELAY_NAME } from './status.ts'

const READY_TIMEOUT_MS = 15_000

/** How long a relay may stay in standby before `up` reports it as waiting behind another relay. */
const STANDBY_GRACE_MS = 1500

/**
 * Waits until the relay holds its lease, or has stood by behind another relay
 * for a moment (a second `up`); rejects if it fails first.
 */
async function relayStarted(relay: Relay): Promise<void> {
  const started = Date.now()
  let failure: unknown
  relay.closed.catch((e: unknown) => (failure = e))
  while (relay.state !== 'active') {
    if (failure !== undefined) throw failure
    if (relay.state === 'stopped') throw new EventplaneError('bus.unavailable', 'the relay stopped while starting')
    if (relay.state === 'standby' && Date.now() - started > STANDBY_GRACE_MS) return
    if (Date.now() - started > READY_TIMEOUT_MS)
      throw new EventplaneError(
        'bus.unavailable',
        `the relay did not start within ${READY_TIMEOUT_MS} ms (state ${relay.state})`,
      )
    await sleep(20)
  }
}

/** `evtctl up`: gateway, relay and the example runtime in one process, for local use. */
export function registerUp(program: Command, kit: CommandKit): void {
  program
    .command('up')
    .description(
      'run the gateway, the relay and the example controller and projections in one process (local use); stops cleanly on Ctrl-C',
    )
    .option('--relay-name <name>', 'relay checkpoint and lease name', DEFAULT_RELAY_NAME)
    .option(
      '--terminate-stuck',
      'let the relay terminate transactions of this database that hold back the log longer than 30 s (default: report them)',
    )
    .option(
      '--ops-port <port>',
      'serve /healthz, /readyz and /metrics on this loopback port, 0 for any free one (default: EVENTPLANE_OPS_PORT, else off)',
      intOption('--ops-port', 0),
    )
    .addHelpText(
      'after',
      [
        '',
        'Prints one "ready" line on stdout once everything serves. Uses one NATS connection with the',
        'configured user (an open server or the operator user); production runs each part separately.',
        '',
        'Examples:',
        '  $ evtctl migrate && evtctl up',
        '  $ EVENTPLANE_NATS_URL=nats://127.0.0.1:4222 evtctl up --log-level info',
      ].join('\n'),
    )
    .action(
      kit.action(async (session, cmd) => {
        if (cmd.getOptionValueSourceWithGlobals('logLevel') === 'default') session.log.level = 'info'
        const options = cmd.opts<{ relayName: string; terminateStuck?: boolean; opsPort?: number }>()
        const ops = opsConfigFromEnv(session.io.env)
        if (options.opsPort !== undefined) ops.port = options.opsPort
        const metrics = processMetrics(ops)
        const relayName = validateName('consumer', options.relayName)
        const nc = await session.nats()
        await requireJetStream(nc, session.config.natsUrl)
        const registry = domainRegistry()
        const gateway = await startGateway({
          nc,
          store: new PgEventStore(session.pg(ROLES.intentWriter, 4), { registry }),
          registry,
          logger: session.log,
          metrics,
        })
        session.onClose(() => gateway.stop())
        const relay = new Relay({
          sql: session.pg(ROLES.relay, 4),
          nc,
          name: relayName,
          logger: session.log,
          metrics,
          guard: { terminate: options.terminateStuck === true },
        })
        relay.start()
        session.onClose(() => relay.stop())
        await relayStarted(relay)
        const runtime: RunningPart[] = []
        for (const controller of CONTROLLERS.values()) runtime.push(await startController(session, controller, metrics))
        for (const projection of PROJECTIONS.values()) runtime.push(await startProjection(session, projection, metrics))
        const opsServer = await serveOps({
          config: ops,
          metrics,
          pg: { postgres: session.pg(ROLES.relay, 4) },
          nc,
          relays: [relay],
          logger: session.log,
        })
        if (opsServer) session.onClose(() => opsServer.close())
        const parts = {
          ...(opsServer ? { ops: opsServer.url } : {}),
          gateway: SUBMIT_SUBJECTS,
          relay: relayName,
          relay_state: relay.state,
          runtime: runtime.map((p) => p.name),
        }
        session.out.emit(
          { ready: true, ...parts },
          () =>
            `ready: gateway on ${parts.gateway}, relay ${relayName} (${relay.state})${parts.runtime.length ? `, ${parts.runtime.join(', ')}` : ''}${opsServer ? `, ops on ${opsServer.url}` : ''}; Ctrl-C to stop`,
        )
        const relayFailed = relay.closed.then(() => {
          throw new EventplaneError('bus.unavailable', 'the relay stopped')
        })
        const gatewayClosed = gateway.closed.then(() => {
          throw new EventplaneError('bus.unavailable', 'the gateway subscription closed')
        })
        await Promise.race([aborted(session.signal), relayFailed, gatewayClosed, ...runtime.map((p) => p.failed)])
        relayFailed.catch(() => {})
        gatewayClosed.catch(() => {})
        // Stop taking intents first, let the relay publish what was recorded, then the runtime.
        session.log.info({}, 'shutting down')
        await gateway.stop()
        await relay.stop()
        for (const part of runtime) await part.stop()
        session.out.emit({ stopped: true }, () => 'stopped')
      }),
    )
}
