import { readFile } from 'node:fs/promises'
import { resolve } from 'node:path'
import { type Command, InvalidArgumentError } from 'commander'
import {
  type EventData,
  EventplaneError,
  type ExpectedVersion,
  InvalidData,
  isEventplaneError,
  draftIntent,
  expectedVersionFromText,
  formatStream,
} from '@eventplane/core'
import { submitIntent } from '@eventplane/bus-nats'
import { readAllStdin } from '../io.ts'
import { type CommandKit, intOption, tenantOption, helpAfter } from '../command-kit.ts'
import type { Session } from '../session.ts'
import { resolveStreamArg } from '../stream-arg.ts'
import { closedFailure } from '../services/connection-closed.ts'

/**
 * A submit the gateway did not answer in time, with what to do: the intent may be recorded all the same (a slow
 * gateway or a lost reply), so the retry must carry its event id, which evtctl drew unless --event-id gave it.
 */
function unanswered(failure: EventplaneError, eventId: string, timeoutMs: number): EventplaneError {
  return new EventplaneError(
    failure.code,
    `${failure.message}: no gateway answered within ${timeoutMs} ms (is evtctl gateway running?); the intent may ` +
      `be recorded all the same: retry with --event-id ${eventId}`,
    { cause: failure, details: { ...failure.details, event_id: eventId } },
  )
}

/** Largest `--data` input read before validation (which applies the real 64 KiB limit). */
const MAX_INPUT_BYTES = 1024 * 1024

interface PublishOptions {
  data: string
  expectedVersion?: ExpectedVersion
  eventId?: string
  schemaVersion?: number
  principal?: string
  timeout: number
}

/** Parses `--expected-version`: a non-negative integer, `no_stream` or `any`. */
export function parseExpectedVersion(value: string): ExpectedVersion {
  const expected = expectedVersionFromText(value)
  if (expected === undefined)
    throw new InvalidArgumentError('--expected-version must be a non-negative integer, no_stream or any')
  return expected
}

/** The event data from `--data`: inline JSON, `@file`, or `-` for stdin. Must be a JSON object. */
export async function readEventData(session: Session, spec: string): Promise<EventData> {
  let text: string
  let source: string
  if (spec === '-') {
    text = await readAllStdin(session.io, MAX_INPUT_BYTES)
    source = 'stdin'
  } else if (spec.startsWith('@')) {
    const path = resolve(session.io.cwd ?? process.cwd(), spec.slice(1))
    text = await readFile(path, 'utf8').catch((e: NodeJS.ErrnoException) => {
      throw new InvalidData(`cannot read --data file ${path} (${e.code ?? 'error'})`)
    })
    source = path
  } else {
    text = spec
    source = '--data'
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (e) {
    throw new InvalidData(`${source} is not valid JSON: ${(e as Error).message}`)
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw new InvalidData(`${source} must hold a JSON object`)
  return parsed as EventData
}

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

/**
 * The clock for the event: a UUIDv7 event id carries its creation time, so
 * a retry with the same `--event-id` yields the same `occurred_at` and the
 * store recognises it as the same event (idempotent) rather than a conflict.
 */
export function clockFor(eventId: string | undefined): (() => Date) | undefined {
  if (eventId === undefined || !UUID_V7.test(eventId)) return undefined
  const ms = Number.parseInt(eventId.slice(0, 8) + eventId.slice(9, 13), 16)
  return () => new Date(ms)
}

/** `evtctl publish <stream> <type>`: drafts an intent (unstamped) and submits it through the gateway. */
export function registerPublish(program: Command, kit: CommandKit): void {
  program
    .command('publish')
    .description(
      'submit an intent through the gateway (NATS request); prints event id, correlation id, version, position',
    )
    .argument('<stream>', 'tenant/category/id (or category/id with --tenant)')
    .argument('<type>', 'event type, e.g. deploy_requested')
    .requiredOption('--data <json|@file|->', 'event data: a JSON object inline, @path to a file, or - for stdin')
    .option('--expected-version <n|no_stream|any>', 'optimistic concurrency check (default any)', parseExpectedVersion)
    .option(
      '--event-id <uuid>',
      'your own event id (a UUIDv7, which also fixes occurred_at) so a retry is idempotent (default: a new UUIDv7)',
    )
    .option('--schema-version <n>', 'schema version of the type (default 1)', intOption('--schema-version', 1))
    .option('--principal <name>', 'who you act for, within your tenant (recorded as caused_by nats:<tenant>/<name>)')
    .option('--timeout <ms>', 'how long to wait for the gateway', intOption('--timeout', 1), 5000)
    .addOption(tenantOption())
    .addHelpText(
      'after',
      helpAfter(
        'A timeout (exit 3) means the intent may or may not be recorded: retry with the same --event-id.',
        '',
        'Examples:',
        `  $ evtctl publish acme/deployment/web-1 deploy_requested --data '{"image":"web:1.2"}' --expected-version no_stream`,
        '  $ evtctl publish deployment/web-1 scale_requested --tenant acme --data @scale.json --event-id 0190c7a2-5b1e-7c3d-9f00-2a4b6c8d0e1f',
        `  $ echo '{"replicas":3}' | evtctl publish acme/deployment/web-1 scale_requested --data - --json`,
      ),
    )
    .action(
      kit.action<PublishOptions>(async (session, command, opts) => {
        const ref = resolveStreamArg(command.args[0]!, session.config)
        const data = await readEventData(session, opts.data)
        // Unstamped: the gateway stamps caused_by from the identity NATS vouches for.
        const eventId = opts.eventId?.toLowerCase()
        const now = clockFor(eventId)
        // The stream's names were parsed once (resolveStreamArg); the draft, the subject and the inbox trust them.
        const event = draftIntent(ref, command.args[1]!, data, {
          ...(now ? { now } : {}),
          ...(eventId === undefined ? {} : { eventId }),
          ...(opts.schemaVersion === undefined ? {} : { schemaVersion: opts.schemaVersion }),
        })
        const nc = await session.nats(ref)
        session.log.info({ stream: formatStream(ref), type: event.type, event_id: event.event_id }, 'submitting intent')
        const result = await submitIntent(nc, event, {
          timeoutMs: opts.timeout,
          ...(opts.expectedVersion === undefined ? {} : { expectedVersion: opts.expectedVersion }),
          ...(opts.principal === undefined ? {} : { principal: opts.principal }),
        }).catch(async (e: unknown) => {
          // The server closed the connection under the request (its user revoked): say why, not "unavailable".
          const failure = await closedFailure(nc, 'publish', session.natsIdentity, e)
          throw isEventplaneError(failure, 'bus.timeout') ? unanswered(failure, event.event_id, opts.timeout) : failure
        })
        session.log.info(
          { event_id: result.event_id, position: result.position, stream_version: result.stream_version },
          'intent recorded',
        )
        const stream = { category: ref.category, id: ref.id }
        session.out.emit({ ...result, tenant_id: ref.tenant, stream, type: event.type }, () => [
          `event_id        ${result.event_id}`,
          `correlation_id  ${result.correlation_id}`,
          `stream          ${formatStream(ref)} v${result.stream_version}`,
          `position        ${result.position}`,
        ])
      }),
    )
}
