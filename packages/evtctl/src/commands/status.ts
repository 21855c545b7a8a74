import type { Command } from 'commander'
import { ROLES, logHeadSql, redactUrl } from '@eventplane/store-pg'
import { type CommandKit, tenantOption } from '../program.ts'
import { type GatewayProbe, probeGateway } from '../probes.ts'
import type { Session } from '../session.ts'
import { backendSql, heldBackSql } from '../sql/held-back.ts'
import { projectionStatusSql } from '../sql/projection-status.ts'
import { relayStatusSql } from '../sql/relay-status.ts'

/** The relay name `evtctl up` and bus-nats use when none is given. */
export const DEFAULT_RELAY_NAME = 'default'

/** `status --json` output; positions and counts are decimal strings. */
export interface StatusReport {
  database: string
  log: {
    head_position: string | null
    snapshot_xmin: string
    /** Committed events the gap-safe read cannot return yet. */
    waiting: string
    /** The oldest running transaction in the cluster (any database): what holds the read back. */
    oldest_transaction: {
      pid: number
      xid: string | null
      database: string | null
      user: string | null
      application: string | null
      since: string | null
    } | null
  }
  relays: {
    name: string
    checkpoint: string | null
    updated_at: string | null
    lag: string
    active: boolean
    pid: number | null
  }[]
  projections: { name: string; version: number; checkpoint: string; updated_at: string; lag: string }[]
  /** Absent with --no-nats. */
  gateway?: GatewayProbe
}

/** Collects the PostgreSQL side of the status with the operator role (cross-tenant, read-only). */
export async function collectPgStatus(session: Session): Promise<StatusReport> {
  const sql = session.pg(ROLES.operator, 1)
  const head = await logHeadSql(sql)
  const held = await heldBackSql(sql)
  const backend = head.oldest_xact_pid === null ? undefined : await backendSql(sql, head.oldest_xact_pid)
  const relays = await relayStatusSql(sql, [DEFAULT_RELAY_NAME])
  const projections = await projectionStatusSql(sql)
  return {
    database: redactUrl(session.config.databaseUrl),
    log: {
      head_position: head.last_position,
      snapshot_xmin: head.xmin,
      waiting: held.waiting,
      oldest_transaction:
        head.oldest_xact_pid === null
          ? null
          : {
              pid: head.oldest_xact_pid,
              xid: backend?.backend_xid ?? null,
              database: backend?.datname ?? null,
              user: backend?.usename ?? null,
              application: backend?.application_name || null,
              since: head.oldest_xact_start?.toISOString() ?? null,
            },
    },
    relays: relays.map((r) => ({
      name: r.name,
      checkpoint: r.tx_id === null ? null : `${r.tx_id}:${r.global_position}`,
      updated_at: r.updated_at?.toISOString() ?? null,
      lag: r.lag,
      active: r.lock_pid !== null,
      pid: r.lock_pid,
    })),
    projections: projections.map((p) => ({
      name: p.projection,
      version: p.version,
      checkpoint: `${p.tx_id}:${p.global_position}`,
      updated_at: p.updated_at.toISOString(),
      lag: p.lag,
    })),
  }
}

function describeHolder(t: NonNullable<StatusReport['log']['oldest_transaction']>): string {
  const parts = [`pid ${t.pid}`]
  if (t.database) parts.push(`database ${t.database}`)
  if (t.user) parts.push(`user ${t.user}`)
  if (t.application) parts.push(`application ${t.application}`)
  parts.push(t.since ? `open since ${t.since}` : 'open since unknown (needs pg_read_all_stats)')
  return `xid ${t.xid ?? '?'} (${parts.join(', ')})`
}

/** The human form of a status report, one aspect per line. */
export function statusLines(r: StatusReport): string[] {
  const lines = [
    `database    ${r.database}`,
    `log         head ${r.log.head_position === null ? '(empty)' : `@${r.log.head_position}`}, snapshot xmin ${r.log.snapshot_xmin}`,
  ]
  const t = r.log.oldest_transaction
  if (r.log.waiting !== '0') {
    lines.push(
      `held back   ${r.log.waiting} committed events wait behind ${t ? describeHolder(t) : `xid ${r.log.snapshot_xmin}`}`,
    )
  } else {
    lines.push(`held back   no${t ? `; oldest open transaction ${describeHolder(t)}` : ''}`)
  }
  for (const relay of r.relays) {
    const state = relay.active ? `active (pid ${relay.pid})` : 'not running'
    const cp = relay.checkpoint === null ? 'no checkpoint' : `checkpoint ${relay.checkpoint} at ${relay.updated_at}`
    lines.push(`relay       ${relay.name}: ${state}, ${cp}, lag ${relay.lag}`)
  }
  if (r.projections.length === 0) lines.push('projections none yet')
  for (const p of r.projections) {
    lines.push(`projection  ${p.name} v${p.version}: checkpoint ${p.checkpoint} at ${p.updated_at}, lag ${p.lag}`)
  }
  if (r.gateway) {
    const state =
      r.gateway.alive === true ? 'alive' : r.gateway.alive === false ? 'not answering' : 'unknown (NATS unreachable)'
    lines.push(`gateway     ${state}: ${r.gateway.detail}`)
  }
  return lines
}

/** `evtctl status`: log head, what holds the gap-safe read back, relay and projection lag. */
export function registerStatus(program: Command, kit: CommandKit): void {
  program
    .command('status')
    .description('log head, relay lag and liveness, projection checkpoints, and what holds the gap-safe read back')
    .option('--no-nats', 'skip the gateway probe (PostgreSQL only)')
    .addOption(tenantOption())
    .addHelpText(
      'after',
      [
        '',
        'The gateway is alive when it answers a probe request (an empty submit it must refuse; nothing is written).',
        'Uses the operator role (EVENTPLANE_DATABASE_URL with user eventplane_operator, or EVENTPLANE_DATABASE_URL_OPERATOR).',
        'A relay is active when a session holds its advisory lock; lag counts committed events after a checkpoint.',
        '',
        'Examples:',
        '  $ evtctl status',
        '  $ evtctl status --json | jq .relays',
      ].join('\n'),
    )
    .action(
      kit.action(async (session, command) => {
        const report = await collectPgStatus(session)
        if (command.opts<{ nats: boolean }>().nats) report.gateway = await probeGateway(session)
        session.out.emit(report, () => statusLines(report))
      }),
    )
}
