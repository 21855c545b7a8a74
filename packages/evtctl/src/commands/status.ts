import { type Command, InvalidArgumentError } from 'commander'
import { type RebuildReport, rebuildNote, rebuildReport } from '../rebuild-note.ts'
import { Unavailable, formatCheckpoint } from '@eventplane/core'
import { DEFAULT_RELAY_NAME } from '@eventplane/bus-nats'
import {
  type OpenTransaction,
  ROLES,
  logStatus,
  projectionStatuses,
  redactUrl,
  relayStatuses,
} from '@eventplane/store-pg'
import { type CommandKit, domainOption, helpAfter, intOption, tenantOption } from '../command-kit.ts'
import {
  type ControllersReport,
  collectControllers,
  controllerLines,
  controllerProblems,
} from '../controller-status.ts'
import { type GatewayProbe, probeGateway } from '../probes.ts'
import { type LogAccountProbe, probeLogAccount } from '../log-account-probe.ts'
import {
  DEFAULT_MAX_STREAM_FILL,
  type StreamReport,
  collectStream,
  streamLine,
  streamProblems,
} from '../stream-status.ts'
import type { Session } from '../session.ts'

/** How old a transaction holding an xid must be for `status` to call it stuck, by default (the relay guard's default bound). */
export const DEFAULT_STUCK_AFTER_MS = 30_000

/** A transaction holding an xid, as `status --json` shows it (never its query text). */
export interface TransactionReport {
  /** `session`, `prepared` (no pid; `gid` names it) or `other` (an xid the read waits for, not a client session). */
  kind: 'session' | 'prepared' | 'other'
  pid: number | null
  xid: string | null
  database: string | null
  user: string | null
  application: string | null
  /** A prepared transaction's name; null otherwise. */
  gid: string | null
  since: string | null
  age_ms: number | null
}

/** `status --json` output; positions and counts are decimal strings. */
export interface StatusReport {
  database: string
  log: {
    head_position: string | null
    /** The oldest transaction running anywhere in the cluster. */
    snapshot_xmin: string
    /** Where the gap-safe read stops: the oldest running transaction that could write into this log (0018). */
    horizon: string
    /** Committed events the gap-safe read cannot return yet. */
    waiting: string
    /**
     * The oldest transaction that holds this log's read back: of this database, or prepared (any database). The
     * relay's oldest-transaction gauge is its age.
     */
    oldest_transaction: TransactionReport | null
    /**
     * The transaction at the horizon, what holds the read back now. Null when nothing waits (the horizon is then
     * `snapshot_xmin`, maybe another database's xid, which never holds this log) or its xid ended meanwhile.
     */
    holding_transaction: TransactionReport | null
    /**
     * Transactions of other databases holding an xid, oldest first: shown (they are what holds `snapshot_xmin`
     * below `horizon`), but they cannot write into this log and do not hold its read back, so none is ever
     * stuck, in --check, counted by the relay's gauge or ended by its guard.
     */
    other_database_transactions: TransactionReport[]
    /** Transactions holding the read back for longer than `stuck_after_ms`: what the relay guard reports (and may end). */
    stuck_transactions: TransactionReport[]
    stuck_after_ms: number
  }
  relays: {
    name: string
    checkpoint: string | null
    updated_at: string | null
    lag: string
    active: boolean
    pid: number | null
  }[]
  projections: {
    name: string
    version: number
    checkpoint: string
    updated_at: string
    lag: string
    generation: number
    /** A rebuild in progress or interrupted: the output above is the previous complete one. */
    rebuild: (RebuildReport & { remaining: string }) | null
  }[]
  /** Absent with --no-nats. */
  gateway?: GatewayProbe
  /** Whether the server applies the auth dir's log account JWT: with EVENTPLANE_NATS_AUTH_DIR, not --no-nats. */
  log_account?: LogAccountProbe
  /** Each controller's lag from its durable JetStream consumer (`ctl_<name>`); absent with --no-nats. */
  controllers?: ControllersReport
  /** The log stream (EVENTPLANE): messages, bytes, max_bytes and fill; absent with --no-nats. */
  stream?: StreamReport
  /** With --check: what is wrong, one sentence per problem (empty when healthy). */
  check?: { healthy: boolean; problems: string[]; max_lag: number; relay: string; max_stream_fill: number }
}

/** Events a relay, projection or controller may lag before `status --check` calls it a problem, by default. */
export const DEFAULT_MAX_LAG = 1000

/**
 * What `status --check` finds wrong in a report: the relay `relay` not active
 * (no live session holds its lease) or lagging more than `maxLag` events, a
 * projection lagging more than `maxLag`, a transaction holding the read back
 * longer than the stuck bound, the gateway not answering (when probed), and
 * (when NATS was asked) a controller lagging more than `maxLag`, missing its
 * consumer though the domain names it, or NATS unable to tell, and the log
 * stream filled to `maxStreamFill` percent or more, missing, or its state unknown.
 */
export function healthProblems(
  r: StatusReport,
  relay: string,
  maxLag: number,
  maxStreamFill: number = DEFAULT_MAX_STREAM_FILL,
): string[] {
  const problems: string[] = []
  const named = r.relays.find((x) => x.name === relay)
  if (named === undefined || !named.active)
    problems.push(`relay ${relay} is not active (no live session holds its lease)`)
  if (named !== undefined && BigInt(named.lag) > BigInt(maxLag))
    problems.push(`relay ${relay} lags ${named.lag} events (more than ${maxLag})`)
  for (const p of r.projections) {
    if (BigInt(p.lag) > BigInt(maxLag)) problems.push(`projection ${p.name} lags ${p.lag} events (more than ${maxLag})`)
  }
  for (const t of r.log.stuck_transactions) {
    problems.push(
      `transaction xid ${t.xid ?? '?'} (${t.pid === null ? t.kind : `pid ${t.pid}`}) holds back the log: open longer than ${r.log.stuck_after_ms / 1000} s`,
    )
  }
  if (r.gateway && r.gateway.alive !== true) problems.push(`the gateway is not answering: ${r.gateway.detail}`)
  if (r.controllers) problems.push(...controllerProblems(r.controllers, maxLag))
  if (r.stream) problems.push(...streamProblems(r.stream, maxStreamFill))
  if (r.log_account && r.log_account.applied !== true) problems.push(`the log account: ${r.log_account.detail}`)
  return problems
}

/** A whole percent from 1 to 100, for `--max-stream-fill`. */
function percentOption(name: string): (value: string) => number {
  return (value) => {
    if (!/^\d{1,3}$/.test(value) || Number(value) < 1 || Number(value) > 100)
      throw new InvalidArgumentError(`${name} must be a whole percent from 1 to 100`)
    return Number(value)
  }
}

function transactionReport(t: OpenTransaction): TransactionReport {
  return {
    kind: t.kind,
    pid: t.pid,
    xid: t.xid,
    database: t.database,
    user: t.role,
    application: t.application,
    gid: t.gid,
    since: t.startedAt?.toISOString() ?? null,
    age_ms: t.ageMs,
  }
}

/** Collects the PostgreSQL side of the status with the operator role (cross-tenant, read-only). */
export async function collectPgStatus(
  session: Session,
  stuckAfterMs: number = DEFAULT_STUCK_AFTER_MS,
  relayName: string = DEFAULT_RELAY_NAME,
): Promise<StatusReport> {
  const sql = session.pg(ROLES.operator, 1)
  const log = await logStatus(sql)
  const relays = await relayStatuses(sql, [relayName])
  const projections = await projectionStatuses(sql)
  // Classified by the horizon's rule in store-pg (holdsLog): another database's never hold this log back.
  const holders = log.openTransactions.filter((t) => t.holdsLog)
  const oldest = holders[0]
  // backend_xid is the 32-bit form of the horizon's xid8.
  const holding = holders.find((t) => t.xid === (log.horizon & 0xffffffffn).toString())
  return {
    database: redactUrl(session.config.databaseUrl),
    log: {
      head_position: log.headPosition?.toString() ?? null,
      snapshot_xmin: log.snapshotXmin.toString(),
      horizon: log.horizon.toString(),
      waiting: log.waiting.toString(),
      oldest_transaction: oldest === undefined ? null : transactionReport(oldest),
      holding_transaction: holding === undefined ? null : transactionReport(holding),
      other_database_transactions: log.openTransactions.filter((t) => !t.holdsLog).map(transactionReport),
      stuck_transactions: holders.filter((t) => t.ageMs !== null && t.ageMs > stuckAfterMs).map(transactionReport),
      stuck_after_ms: stuckAfterMs,
    },
    relays: relays.map((r) => ({
      name: r.name,
      checkpoint: r.checkpoint === null ? null : formatCheckpoint(r.checkpoint),
      updated_at: r.updatedAt?.toISOString() ?? null,
      lag: r.lag.toString(),
      active: r.holderPid !== null,
      pid: r.holderPid,
    })),
    projections: projections.map((p) => ({
      name: p.projection,
      version: p.version,
      checkpoint: formatCheckpoint(p.checkpoint),
      updated_at: p.updatedAt.toISOString(),
      lag: p.lag.toString(),
      generation: p.generation,
      rebuild: p.rebuild && rebuildReport(p.rebuild),
    })),
  }
}

function describeHolder(t: TransactionReport): string {
  const parts = [t.pid === null ? t.kind : `pid ${t.pid}`]
  if (t.gid !== null) parts.push(`gid ${t.gid}`)
  if (t.database) parts.push(`database ${t.database}`)
  if (t.user) parts.push(`user ${t.user}`)
  if (t.application) parts.push(`application ${t.application}`)
  parts.push(t.since ? `open since ${t.since}` : 'open since unknown')
  if (t.age_ms !== null) parts.push(`${(t.age_ms / 1000).toFixed(1)} s`)
  return `xid ${t.xid ?? '?'} (${parts.join(', ')})`
}

/** The human form of a status report, one aspect per line. */
export function statusLines(r: StatusReport): string[] {
  const lines = [
    `database    ${r.database}`,
    `log         head ${r.log.head_position === null ? '(empty)' : `@${r.log.head_position}`}, horizon ${r.log.horizon}, snapshot xmin ${r.log.snapshot_xmin}`,
  ]
  const t = r.log.oldest_transaction
  if (r.log.waiting !== '0') {
    const h = r.log.holding_transaction
    lines.push(
      `held back   ${r.log.waiting} committed events wait behind ${h ? describeHolder(h) : `xid ${r.log.horizon}`}`,
    )
  } else {
    lines.push(`held back   no${t ? `; oldest open transaction ${describeHolder(t)}` : ''}`)
  }
  const elsewhere = r.log.other_database_transactions
  if (elsewhere.length > 0)
    lines.push(
      `elsewhere   ${elsewhere.length} transaction${elsewhere.length === 1 ? '' : 's'} of other databases, not holding this log back; oldest ${describeHolder(elsewhere[0]!)}`,
    )
  for (const stuck of r.log.stuck_transactions) {
    lines.push(`stuck       ${describeHolder(stuck)}: open longer than ${r.log.stuck_after_ms / 1000} s`)
  }
  for (const relay of r.relays) {
    // The pid is the PostgreSQL session's that holds the lease (pg_stat_activity), not the relay process's.
    const state = relay.active ? `active (lease held by PostgreSQL session pid ${relay.pid})` : 'not running'
    const cp = relay.checkpoint === null ? 'no checkpoint' : `checkpoint ${relay.checkpoint} at ${relay.updated_at}`
    lines.push(`relay       ${relay.name}: ${state}, ${cp}, lag ${relay.lag}`)
  }
  if (r.projections.length === 0) lines.push('projections none yet')
  for (const p of r.projections) {
    lines.push(`projection  ${p.name} v${p.version}: checkpoint ${p.checkpoint} at ${p.updated_at}, lag ${p.lag}`)
    if (p.rebuild) lines.push(`            ${rebuildNote(p.name, p.rebuild)}`)
  }
  if (r.gateway) {
    const state =
      r.gateway.alive === true ? 'alive' : r.gateway.alive === false ? 'not answering' : 'unknown (no NATS connection)'
    lines.push(`gateway     ${state}: ${r.gateway.detail}`)
  }
  if (r.controllers) lines.push(...controllerLines(r.controllers))
  if (r.stream) lines.push(streamLine(r.stream))
  if (r.log_account) {
    const state =
      r.log_account.applied === true ? 'applied' : r.log_account.applied === false ? 'not applied' : 'unknown'
    lines.push(`log account ${state}: ${r.log_account.detail}`)
  }
  if (r.check?.healthy) lines.push('check       healthy')
  for (const problem of r.check?.problems ?? []) lines.push(`check       unhealthy: ${problem}`)
  return lines
}

/** `evtctl status`: log head, what holds the gap-safe read back, relay, projection and controller lag, the log stream. */
export function registerStatus(program: Command, kit: CommandKit): void {
  program
    .command('status')
    .description(
      "log head, relay lag and liveness, projection checkpoints, controller lag, the log stream's fill, and what holds the gap-safe read back",
    )
    .option('--no-nats', 'skip the gateway probe, controller lag and the log stream (PostgreSQL only)')
    .option(
      '--stuck-after <ms>',
      'call a transaction holding an xid longer than this stuck',
      intOption('--stuck-after', 1),
      DEFAULT_STUCK_AFTER_MS,
    )
    .option('--check', 'exit 3 when something is unhealthy (see below), 0 when healthy; one line per problem')
    .option('--relay <name>', 'the relay --check requires to be active', DEFAULT_RELAY_NAME)
    .option(
      '--max-lag <events>',
      'with --check: the most events the relay, a projection or a controller may lag',
      intOption('--max-lag', 0),
      DEFAULT_MAX_LAG,
    )
    .option(
      '--max-stream-fill <percent>',
      "with --check: the log stream's fill (percent of its max_bytes) at which it is a problem",
      percentOption('--max-stream-fill'),
      DEFAULT_MAX_STREAM_FILL,
    )
    .addOption(tenantOption())
    .addOption(domainOption())
    .addHelpText(
      'after',
      helpAfter(
        'With --check, unhealthy means: the relay (--relay) is not active or lags more than --max-lag events, a',
        'projection lags more than --max-lag, a transaction holds the read back longer than --stuck-after, or',
        '(unless --no-nats) the gateway does not answer, a controller lags more than --max-lag, a controller of the',
        'domain (--domain) has no consumer, NATS cannot tell, the log stream (EVENTPLANE) is filled to',
        '--max-stream-fill percent of its max_bytes or more, does not exist or NATS cannot tell its state, or (with',
        "EVENTPLANE_NATS_AUTH_DIR) the server does not apply the auth dir's log account JWT (accounts/EVENTPLANE.jwt).",
        'Each problem is one "check" line (or check.problems with --json) and the exit code is 3; healthy is exit 0.',
        '',
        "The stream line shows the log stream's fill (bytes of max_bytes), messages and max_age. Every tenant's",
        'events go through it; once full it refuses new messages and the relay stops publishing for every tenant',
        'until there is room (nothing is lost: the PostgreSQL log keeps every event). Reading it needs',
        '$JS.API.STREAM.INFO.EVENTPLANE (the operator, relay and controller NATS users have it).',
        '',
        "A controller's lag is what its durable consumer (ctl_<name>) has not acknowledged: pending plus delivered",
        'and unacknowledged events. Listing consumers needs the operator NATS user (operator.creds).',
        '',
        'The gateway is alive when it answers a probe request (an empty submit it must refuse; nothing is written).',
        'Uses the operator role (EVENTPLANE_DATABASE_URL with user eventplane_operator, or EVENTPLANE_DATABASE_URL_OPERATOR).',
        'A relay is active while a live session holds its lease; lag counts committed events after a checkpoint.',
        'A transaction holding an xid in this database (or a prepared one, in any database) holds back the gap-safe',
        'read; "stuck" lists those open longer than --stuck-after (pid, database, role, age; never query text), as',
        'the relay guard logs them. Other databases\' transactions do not hold this log back: "elsewhere" counts',
        'them and names the oldest; none is ever stuck.',
        '',
        'Examples:',
        '  $ evtctl status',
        '  $ evtctl status --json | jq .relays',
        '  $ evtctl status --check --max-lag 10000 || page-someone',
      ),
    )
    .action(
      kit.action<{
        nats: boolean
        stuckAfter: number
        check?: boolean
        relay: string
        maxLag: number
        maxStreamFill: number
      }>(async (session, _command, options) => {
        const report = await collectPgStatus(session, options.stuckAfter, options.relay)
        if (options.nats) {
          report.gateway = await probeGateway(session)
          report.controllers = await collectControllers(session)
          const logAccount = await probeLogAccount(session)
          if (logAccount !== undefined) report.log_account = logAccount
          report.stream = await collectStream(session)
        }
        const problems = options.check
          ? healthProblems(report, options.relay, options.maxLag, options.maxStreamFill)
          : []
        if (options.check)
          report.check = {
            healthy: problems.length === 0,
            problems,
            max_lag: options.maxLag,
            relay: options.relay,
            max_stream_fill: options.maxStreamFill,
          }
        session.out.emit(report, () => statusLines(report))
        if (problems.length > 0)
          throw new Unavailable(
            'bus.unavailable',
            `status --check: ${problems.length} problem${problems.length === 1 ? '' : 's'} (see the check lines)`,
          )
      }),
    )
}
