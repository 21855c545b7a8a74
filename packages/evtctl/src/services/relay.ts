import { type KeyObject, createPrivateKey } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { setTimeout as sleep } from 'node:timers/promises'
import { EventplaneError } from '@eventplane/core'
import { DEFAULT_RELAY_NAME, type EventplaneMetrics, HeadsPublisher, Relay, type StopWaits } from '@eventplane/bus-nats'
import type { NatsConnection } from '@nats-io/transport-node'
import { ROLES, type Sql } from '@eventplane/store-pg'
import { CliError } from '../cli-error.ts'
import type { RunningPart } from '../runners.ts'
import { partFailure } from './connection-closed.ts'
import type { Session } from '../session.ts'
import type { ResolvedSettings, SettingSpec } from '../service-settings.ts'

/** The relay's settings: `evtctl relay` flags, `EVENTPLANE_RELAY_*` / `EVENTPLANE_STREAM_*`, config file `relay.*`. */
export const RELAY_SETTINGS: readonly SettingSpec[] = [
  {
    key: 'relayName',
    flag: '--relay-name',
    env: 'EVENTPLANE_RELAY_NAME',
    kind: { type: 'name' },
    help: `checkpoint and lease name; relays of one name take turns (default ${DEFAULT_RELAY_NAME})`,
  },
  {
    key: 'batchSize',
    flag: '--batch-size',
    env: 'EVENTPLANE_RELAY_BATCH_SIZE',
    kind: { type: 'int' },
    help: 'events read per batch (default 500)',
  },
  {
    key: 'maxInFlight',
    flag: '--max-in-flight',
    env: 'EVENTPLANE_RELAY_MAX_IN_FLIGHT',
    kind: { type: 'int' },
    help: 'un-acked publishes at most (default 256)',
  },
  {
    key: 'pollMs',
    flag: '--poll-ms',
    env: 'EVENTPLANE_RELAY_POLL_MS',
    kind: { type: 'int' },
    help: 'polling fallback without a notification (default 1000)',
  },
  {
    key: 'duplicateWindowMs',
    flag: '--duplicate-window-ms',
    env: 'EVENTPLANE_RELAY_DUPLICATE_WINDOW_MS',
    kind: { type: 'int' },
    help: "the stream's duplicate window",
  },
  {
    key: 'streamMaxBytes',
    flag: '--stream-max-bytes',
    env: 'EVENTPLANE_STREAM_MAX_BYTES',
    kind: { type: 'int', maxDigits: 15 },
    help: "the stream's size limit (default 4 GiB)",
  },
  {
    key: 'streamMaxAgeMs',
    flag: '--stream-max-age-ms',
    env: 'EVENTPLANE_STREAM_MAX_AGE_MS',
    kind: { type: 'int', maxDigits: 15 },
    help: "the stream's message age limit (default 0: kept for ever; a consumer further behind misses what aged out)",
  },
  {
    key: 'streamMaxMsgSize',
    flag: '--stream-max-msg-size',
    env: 'EVENTPLANE_STREAM_MAX_MSG_SIZE',
    kind: { type: 'int' },
    help: "the stream's largest message (default 256 KiB)",
  },
  {
    key: 'stuckAfterMs',
    flag: '--stuck-after-ms',
    env: 'EVENTPLANE_RELAY_STUCK_AFTER_MS',
    kind: { type: 'int', min: 1000 },
    help: 'a transaction holding the log back longer is reported (default 30000)',
  },
  {
    key: 'headsEveryMs',
    flag: '--heads-every-ms',
    env: 'EVENTPLANE_RELAY_HEADS_EVERY_MS',
    kind: { type: 'int', min: 1000 },
    help: 'publish every tenant’s chain heads to JetStream (stream EVENTPLANE_HEADS) this often, when changed (default: off)',
  },
  {
    key: 'headsSignKey',
    flag: '--heads-sign-key',
    env: 'EVENTPLANE_RELAY_HEADS_SIGN_KEY',
    kind: { type: 'path' },
    help: 'Ed25519 private key (PEM) the published heads are signed with',
  },
  {
    key: 'terminateStuck',
    flag: '--terminate-stuck',
    env: 'EVENTPLANE_RELAY_TERMINATE_STUCK',
    kind: { type: 'bool' },
    help: "terminate this database's transactions that hold the log back too long (default: report them)",
  },
]

const READY_TIMEOUT_MS = 15_000
/** How long a relay may stay in standby before it counts as started, waiting behind another relay. */
const STANDBY_GRACE_MS = 1500

/**
 * Starts a relay as `eventplane_relay` on a NATS connection of its own. With
 * `waitActive` (`up`), resolves once it holds its lease or has stood by
 * behind another relay of its name for a moment, and rejects if it fails
 * first or does not start in 15 s; otherwise (`evtctl relay`, a service that
 * outlives outages) at once, the relay retrying until its servers answer.
 * With `metrics` the relay counts into them (the ops endpoints, serveProcessOps).
 * Publishing heads without a signing key logs a warning at start
 * (`event: 'relay.heads_unsigned'`): such heads can be forged by anyone with
 * the relay's NATS credentials (SECURITY.md, "Heads published on NATS").
 */
export async function startRelay(
  session: Session,
  settings: ResolvedSettings,
  options: { waitActive: boolean; metrics?: EventplaneMetrics },
): Promise<
  RunningPart & {
    relay: Relay
    sql: Sql
    nc: NatsConnection
    /** With `--heads-every-ms`: whether the published heads are signed (`--heads-sign-key`); else undefined. */
    headsSigned: boolean | undefined
  }
> {
  const s = settings.values as {
    relayName?: string
    batchSize?: number
    maxInFlight?: number
    pollMs?: number
    duplicateWindowMs?: number
    streamMaxBytes?: number
    streamMaxAgeMs?: number
    streamMaxMsgSize?: number
    stuckAfterMs?: number
    terminateStuck?: boolean
    headsEveryMs?: number
    headsSignKey?: string
  }
  const signingKey = s.headsSignKey === undefined ? undefined : await readSigningKey(s.headsSignKey)
  if (signingKey && s.headsEveryMs === undefined)
    throw new CliError('cli.config', '--heads-sign-key needs --heads-every-ms (heads are published only when asked)')
  const name = s.relayName ?? DEFAULT_RELAY_NAME
  const headsSigned = s.headsEveryMs === undefined ? undefined : signingKey !== undefined
  if (headsSigned === false)
    session.log.warn(
      { relay: name, signed: false, event: 'relay.heads_unsigned' },
      "heads are published unsigned: anyone with the relay's NATS credentials could publish forged heads; pass --heads-sign-key",
    )
  const sql = session.pg(ROLES.relay, 4, `eventplane-relay:${name}`)
  const nc = await session.serviceNats(`eventplane-relay:${name}`)
  const relay = new Relay({
    sql,
    nc,
    name,
    logger: session.log,
    ...(options.metrics === undefined ? {} : { metrics: options.metrics }),
    ...(s.batchSize === undefined ? {} : { batchSize: s.batchSize }),
    ...(s.maxInFlight === undefined ? {} : { maxInFlight: s.maxInFlight }),
    ...(s.pollMs === undefined ? {} : { pollIntervalMs: s.pollMs }),
    stream: {
      ...(s.duplicateWindowMs === undefined ? {} : { duplicateWindowMs: s.duplicateWindowMs }),
      ...(s.streamMaxBytes === undefined ? {} : { maxBytes: s.streamMaxBytes }),
      ...(s.streamMaxAgeMs === undefined ? {} : { maxAgeMs: s.streamMaxAgeMs }),
      ...(s.streamMaxMsgSize === undefined ? {} : { maxMsgSize: s.streamMaxMsgSize }),
    },
    guard: {
      ...(s.stuckAfterMs === undefined ? {} : { stuckAfterMs: s.stuckAfterMs }),
      terminate: s.terminateStuck === true,
    },
  })
  const heads =
    s.headsEveryMs === undefined
      ? undefined
      : new HeadsPublisher({
          sql,
          nc,
          everyMs: s.headsEveryMs,
          ...(signingKey && { signingKey }),
          // One publisher per relay name: the relay holding the lease.
          isActive: () => relay.state === 'active',
          logger: session.log,
        })
  // Side by side, the heads round in flight abandoned at the relay's stop deadline: the relay's stop bound holds
  // (a round's JetStream requests and PostgreSQL reads wait seconds each while the server stalls). The relay's
  // last drain is one of the process's waits for the server (`waits`): a short one once the server did not answer
  // an earlier wait, and acks it waited for in vain make the waits after it (the connection's drain) short.
  const stop = async (waits?: StopWaits): Promise<void> => {
    const drainMs = waits?.ms(relay.stopDrainMs) ?? relay.stopDrainMs
    await Promise.all([heads?.stop(drainMs), relay.stop(waits)])
  }
  relay.start()
  heads?.start()
  session.onClose(stop)
  if (options.waitActive)
    await relayStarted(relay, session.signal).catch(async (e: unknown) => {
      throw await partFailure(nc, `relay ${name}`, e, session.natsIdentity)
    })
  const failed = relay.closed.then(
    () => {
      throw new EventplaneError('bus.unavailable', `relay ${name} stopped`)
    },
    async (err: unknown) => {
      // The relay ends with bus.unavailable when its connection closed for good: say why the server closed it.
      throw await partFailure(nc, `relay ${name}`, err, session.natsIdentity)
    },
  )
  failed.catch(() => {})
  return {
    name: `relay ${name}`,
    detail: `relay ${name} (${relay.state})`,
    relay,
    sql,
    nc,
    headsSigned,
    stop,
    failed,
  }
}

/**
 * Resolves once `relay` is active, or has stood by for STANDBY_GRACE_MS, or `signal` aborted (`up` then stops it
 * with the rest: a start waiting on a server that stalls must not outlast the stop a SIGTERM gets).
 */
async function relayStarted(relay: Relay, signal: AbortSignal | undefined): Promise<void> {
  const started = Date.now()
  let failure: unknown
  relay.closed.catch((e: unknown) => (failure = e))
  while (relay.state !== 'active') {
    if (signal?.aborted === true) return
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

/** The heads signing key: an Ed25519 private key file (PEM or DER PKCS#8), else `cli.config`. */
async function readSigningKey(file: string): Promise<KeyObject> {
  let key: KeyObject
  try {
    key = createPrivateKey(await readFile(file))
  } catch (e) {
    throw new CliError('cli.config', `cannot read the heads signing key ${file}`, { cause: e })
  }
  if (key.asymmetricKeyType !== 'ed25519')
    throw new CliError('cli.config', `the heads signing key ${file} is not an Ed25519 private key`)
  return key
}
