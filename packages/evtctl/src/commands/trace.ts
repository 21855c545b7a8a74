import type { Command } from 'commander'
import type { RecordedEvent } from '@eventplane/core'
import { PgEventStore, ROLES } from '@eventplane/store-pg'
import { streamOf } from '../format.ts'
import type { CommandKit } from '../program.ts'
import { tenantOption } from '../program.ts'
import { requireTenant } from '../stream-arg.ts'

/** One node of a causation tree. */
export interface TraceNode {
  event: RecordedEvent
  children: TraceNode[]
}

/**
 * Builds the causation forest of one correlation chain, in log order. An
 * event whose parent is not in the chain (e.g. beyond the read limit) is
 * shown as a root rather than dropped.
 */
export function causationForest(events: readonly RecordedEvent[]): TraceNode[] {
  const nodes = new Map(events.map((event) => [event.event_id, { event, children: [] as TraceNode[] }]))
  const roots: TraceNode[] = []
  for (const node of nodes.values()) {
    const parent = node.event.causation_id === null ? undefined : nodes.get(node.event.causation_id)
    if (parent && parent !== node) parent.children.push(node)
    else roots.push(node)
  }
  return roots
}

function humanLines(nodes: readonly TraceNode[], showActor: boolean, depth = 0, out: string[] = []): string[] {
  for (const { event: e, children } of nodes) {
    const actor = showActor ? `  by ${e.caused_by}` : ''
    out.push(
      `${'  '.repeat(depth)}${e.kind.padEnd(8)} ${e.type}  ${streamOf(e)} v${e.stream_version}  ${e.occurred_at}  ${e.event_id}${actor}`,
    )
    humanLines(children, showActor, depth + 1, out)
  }
  return out
}

function jsonTree(nodes: readonly TraceNode[], showActor: boolean): unknown[] {
  return nodes.map(({ event: e, children }) => ({
    event_id: e.event_id,
    kind: e.kind,
    type: e.type,
    stream: streamOf(e),
    stream_version: e.stream_version,
    global_position: e.global_position.toString(),
    occurred_at: e.occurred_at,
    recorded_at: e.recorded_at,
    causation_id: e.causation_id,
    ...(showActor ? { caused_by: e.caused_by } : {}),
    children: jsonTree(children, showActor),
  }))
}

/** `evtctl trace <correlation-id>`: the causation tree of one chain of one tenant. */
export function registerTrace(program: Command, kit: CommandKit): void {
  program
    .command('trace')
    .description('show the causation tree of a correlation chain: kind, type, stream, time, indented by causation')
    .argument('<correlation-id>', 'the chain (the root event id)')
    .addOption(tenantOption())
    .option('--show-actor', 'include caused_by (the principal) of each event')
    .addHelpText(
      'after',
      '\nExamples:\n  $ evtctl trace 0190c7a2-5b1e-7c3d-9f00-2a4b6c8d0e1f --tenant acme\n  $ evtctl trace 0190c7a2-5b1e-7c3d-9f00-2a4b6c8d0e1f --tenant acme --show-actor --json',
    )
    .action(
      kit.action(async (session, command) => {
        const tenant = requireTenant(session.config, 'trace')
        const correlationId = command.args[0]!.toLowerCase()
        const showActor = command.opts<{ showActor?: boolean }>().showActor === true
        const store = new PgEventStore(session.pg(ROLES.reader))
        const events = await store.readCorrelation(tenant, correlationId)
        session.log.debug({ tenant, correlationId, count: events.length }, 'traced')
        const forest = causationForest(events)
        session.out.emit(
          { tenant, correlation_id: correlationId, count: events.length, tree: jsonTree(forest, showActor) },
          () =>
            events.length === 0
              ? `no events with correlation id ${correlationId} in tenant ${tenant}`
              : humanLines(forest, showActor),
        )
      }),
    )
}
