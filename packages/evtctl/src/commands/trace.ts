import type { Command } from 'commander'
import { type RecordedEvent, toWire } from '@eventplane/core'
import { PgEventStore, ROLES } from '@eventplane/store-pg'
import { streamOf } from '../format.ts'
import { type CommandKit, intOption, tenantOption, helpAfter } from '../command-kit.ts'
import { requireTenant } from '../stream-arg.ts'
import { type TraceRow, type TraceWalk, walkCausation } from '../trace-tree.ts'

/** Events read from a chain unless `--limit` says otherwise (the store's own bound). */
export const DEFAULT_TRACE_LIMIT = 10_000
/** Levels shown unless `--max-depth` says otherwise: deeper chains are nearly always a loop worth seeing cut. */
export const DEFAULT_TRACE_DEPTH = 100
/** Past this depth lines stop moving right and carry their depth instead (a 10,000-deep chain stays readable). */
const INDENT_CAP = 40

interface TraceOptions {
  showActor?: boolean
  maxDepth: number
  limit: number
}

function indent(depth: number): string {
  return depth <= INDENT_CAP ? '  '.repeat(depth) : `${'  '.repeat(INDENT_CAP)}[${depth}] `
}

function eventText(e: RecordedEvent, showActor: boolean): string {
  const actor = showActor ? `  by ${e.caused_by}` : ''
  return `${e.kind.padEnd(8)} ${e.type}  ${streamOf(e)} v${e.stream_version}  ${e.occurred_at}  ${e.event_id}${actor}`
}

function humanLine(row: TraceRow, options: TraceOptions): string {
  switch (row.row) {
    case 'event':
      return `${indent(row.depth)}${eventText(row.event, options.showActor === true)}`
    case 'orphan':
      return `orphan: ${row.eventId} was caused by ${row.missingParent}, which is not in this chain`
    case 'cycle':
      return `cycle: ${row.eventIds.join(' -> ')} -> ${row.eventIds[0]} (each caused by the one before; no root)`
    case 'cycle_back':
      return `${indent(row.depth)}-> ${row.eventId} (shown above: the causation cycle closes here)`
    case 'cut':
      return `${indent(row.depth)}... truncated: ${row.hidden} more events below depth ${options.maxDepth} (raise --max-depth)`
  }
}

function jsonReport(walk: TraceWalk, options: TraceOptions): Record<string, unknown>[] {
  const nodes: Record<string, unknown>[] = []
  for (const row of walk.rows) {
    if (row.row !== 'event') continue
    nodes.push({
      ...toWire(row.event, { redact: { data: true, ...(options.showActor ? {} : { actor: 'drop' }) } }),
      depth: row.depth,
      ...(row.start ? { start: row.start } : {}),
      ...(row.hiddenBelow ? { hidden_below: row.hiddenBelow } : {}),
    })
  }
  return nodes
}

/** `evtctl trace <correlation-id>`: the causation tree of one chain of one tenant. */
export function registerTrace(program: Command, kit: CommandKit): void {
  program
    .command('trace')
    .description('show the causation tree of a correlation chain: kind, type, stream, time, indented by causation')
    .argument('<correlation-id>', 'the chain (the root event id)')
    .addOption(tenantOption())
    .option('--show-actor', 'include caused_by (the principal) of each event')
    .option(
      '--max-depth <n>',
      'show causation levels 0..n; deeper events are counted, not shown',
      intOption('--max-depth'),
      DEFAULT_TRACE_DEPTH,
    )
    .option(
      '--limit <n>',
      'read at most the first n events of the chain, in log order',
      intOption('--limit', 1),
      DEFAULT_TRACE_LIMIT,
    )
    .addHelpText(
      'after',
      helpAfter(
        'Every event of the chain appears once: under the event that caused it, or as a root, an orphan',
        '(its parent is not in this chain) or the start of a causation cycle, each said on its own line.',
        `A cut is said on a "... truncated" line. Past depth ${INDENT_CAP} lines carry their [depth] instead of moving right.`,
        '--json prints one document whose "nodes" list the shown events depth-first: each event in the wire form',
        '(as read --json, without data) with its depth.',
        '',
        'Examples:',
        '  $ evtctl trace 0190c7a2-5b1e-7c3d-9f00-2a4b6c8d0e1f --tenant acme',
        '  $ evtctl trace 0190c7a2-5b1e-7c3d-9f00-2a4b6c8d0e1f --tenant acme --show-actor --json',
        '  $ evtctl trace 0190c7a2-5b1e-7c3d-9f00-2a4b6c8d0e1f --tenant acme --max-depth 20000 --limit 50000',
      ),
    )
    .action(
      kit.action(async (session, command) => {
        const tenant = requireTenant(session.config, 'trace')
        const correlationId = command.args[0]!.toLowerCase()
        const options = command.opts<TraceOptions>()
        const store = new PgEventStore(session.pg(ROLES.reader))
        const read = await store.readCorrelation(tenant, correlationId, options.limit + 1)
        const beyondLimit = read.length > options.limit
        const events = beyondLimit ? read.slice(0, options.limit) : read
        session.log.debug({ tenant, correlationId, count: events.length, beyondLimit }, 'traced')
        const walk = walkCausation(events, options.maxDepth)
        const limitLine = `... truncated: the chain has more than ${options.limit} events; showing the first ${options.limit} in log order (raise --limit)`
        session.out.emit(
          {
            tenant,
            correlation_id: correlationId,
            count: events.length,
            shown: events.length - walk.hidden,
            nodes: jsonReport(walk, options),
            orphans: walk.orphans.map((o) => ({ event_id: o.eventId, missing_parent: o.missingParent })),
            cycles: walk.cycles,
            truncated:
              beyondLimit || walk.hidden > 0
                ? { beyond_limit: beyondLimit, limit: options.limit, below_max_depth: walk.hidden }
                : null,
          },
          () =>
            events.length === 0
              ? `no events with correlation id ${correlationId} in tenant ${tenant}`
              : [...walk.rows.map((row) => humanLine(row, options)), ...(beyondLimit ? [limitLine] : [])],
        )
      }),
    )
}
