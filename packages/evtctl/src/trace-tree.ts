import type { RecordedEvent } from '@eventplane/core'

/** Why an event starts a subtree of the trace. */
export type TraceStart = 'root' | 'orphan' | 'cycle'

/** One line of a causation walk, in the order it is shown. */
export type TraceRow =
  | { row: 'event'; event: RecordedEvent; depth: number; start?: TraceStart; hiddenBelow?: number }
  /** The causation that closes a cycle: `event` (shown above) is caused by the row's parent. */
  | { row: 'cycle_back'; eventId: string; depth: number }
  /** Descendants past `--max-depth`, counted, not shown. */
  | { row: 'cut'; hidden: number; depth: number }
  /** Where an orphan or a cycle begins: said before its subtree. */
  | { row: 'orphan'; eventId: string; missingParent: string }
  | { row: 'cycle'; eventIds: string[] }

/** A causation chain laid out as rows, with what the walk found on the way. */
export interface TraceWalk {
  rows: TraceRow[]
  /** Events whose parent is not in the chain (another correlation or tenant, or never recorded). */
  orphans: { eventId: string; missingParent: string }[]
  /** Groups of events whose causation ids form a loop: no root leads to them. */
  cycles: string[][]
  /** Events deeper than `maxDepth`, not shown. */
  hidden: number
}

interface Frame {
  event: RecordedEvent
  depth: number
  start?: TraceStart
}

/**
 * Lays out a correlation chain (events in log order) as a depth-first tree of
 * causation, without recursion: a 10,000-deep chain must not exhaust the
 * stack. Every event appears once: under its parent, or as a root, an
 * orphan (its parent is not in the chain) or the first of a cycle (events
 * that cause each other, which no root reaches). Events deeper than
 * `maxDepth` are counted under their ancestor at `maxDepth`, not shown.
 */
export function walkCausation(events: readonly RecordedEvent[], maxDepth = Number.POSITIVE_INFINITY): TraceWalk {
  const byId = new Map(events.map((e) => [e.event_id, e]))
  const children = new Map<string, RecordedEvent[]>()
  for (const e of events) {
    if (e.causation_id === null || e.causation_id === e.event_id || !byId.has(e.causation_id)) continue
    const list = children.get(e.causation_id)
    if (list) list.push(e)
    else children.set(e.causation_id, [e])
  }
  const walk: TraceWalk = { rows: [], orphans: [], cycles: [], hidden: 0 }
  const visited = new Set<string>()

  const countSubtree = (top: RecordedEvent): number => {
    let n = 0
    const stack = [...(children.get(top.event_id) ?? [])]
    while (stack.length > 0) {
      const e = stack.pop()!
      if (visited.has(e.event_id)) continue
      visited.add(e.event_id)
      n++
      stack.push(...(children.get(e.event_id) ?? []))
    }
    return n
  }

  const descend = (first: Frame): void => {
    const stack: Frame[] = [first]
    while (stack.length > 0) {
      const frame = stack.pop()!
      const { event, depth } = frame
      visited.add(event.event_id)
      const row: Extract<TraceRow, { row: 'event' }> = {
        row: 'event',
        event,
        depth,
        ...(frame.start ? { start: frame.start } : {}),
      }
      walk.rows.push(row)
      const kids = children.get(event.event_id) ?? []
      if (depth >= maxDepth && kids.length > 0) {
        const hidden = countSubtree(event)
        if (hidden > 0) {
          row.hiddenBelow = hidden
          walk.hidden += hidden
          walk.rows.push({ row: 'cut', hidden, depth: depth + 1 })
        }
        continue
      }
      // A child already shown closes a cycle: say so where it closes instead of showing it twice.
      for (const kid of kids)
        if (visited.has(kid.event_id)) walk.rows.push({ row: 'cycle_back', eventId: kid.event_id, depth: depth + 1 })
      // Pushed in reverse so the first child (in log order) is shown first.
      for (let i = kids.length - 1; i >= 0; i--)
        if (!visited.has(kids[i]!.event_id)) stack.push({ event: kids[i]!, depth: depth + 1 })
    }
  }

  for (const e of events) {
    if (e.causation_id === null) descend({ event: e, depth: 0, start: 'root' })
    else if (!byId.has(e.causation_id)) {
      walk.orphans.push({ eventId: e.event_id, missingParent: e.causation_id })
      walk.rows.push({ row: 'orphan', eventId: e.event_id, missingParent: e.causation_id })
      descend({ event: e, depth: 0, start: 'orphan' })
    }
  }
  // What no root or orphan reached hangs off a cycle: find the loop by following parents.
  for (const e of events) {
    if (visited.has(e.event_id)) continue
    const seen = new Set<string>()
    let at = e
    while (!seen.has(at.event_id)) {
      seen.add(at.event_id)
      at = byId.get(at.causation_id!)!
    }
    const loop: RecordedEvent[] = [at]
    for (let p = byId.get(at.causation_id!)!; p !== at; p = byId.get(p.causation_id!)!) loop.push(p)
    const first = loop.reduce((a, b) => (b.global_position < a.global_position ? b : a))
    // Following parents lists the loop backwards; shown in causal order from its first event in the log.
    const causal = loop.map((x) => x.event_id).reverse()
    const from = causal.indexOf(first.event_id)
    const ids = [...causal.slice(from), ...causal.slice(0, from)]
    walk.cycles.push(ids)
    walk.rows.push({ row: 'cycle', eventIds: ids })
    descend({ event: first, depth: 0, start: 'cycle' })
  }
  return walk
}
