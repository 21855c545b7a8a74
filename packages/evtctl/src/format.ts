import { type RecordedEvent, type WireEvent, formatStream, toWire } from '@eventplane/core'
import { toJson } from './io.ts'

/** How events are shown. */
export interface EventViewOptions {
  /** Include `caused_by` (a principal: personal data in most deployments). */
  showActor: boolean
}

/** `tenant/category/id` of a recorded event. */
export function streamOf(e: RecordedEvent): string {
  return formatStream({ tenant: e.tenant_id, category: e.stream.category, id: e.stream.id })
}

/** The machine form of an event: core's wire form, `caused_by` only when asked for. */
export function eventRecord(e: RecordedEvent, options: EventViewOptions): WireEvent {
  return toWire(e, options.showActor ? {} : { redact: { actor: 'drop' } })
}

/** The human columns of a stream's event: version, position, kind, type, time, id, (actor), data. */
export function eventCells(e: RecordedEvent, options: EventViewOptions): string[] {
  const cols = [`v${e.stream_version}`, `@${e.global_position}`, e.kind, e.type, e.occurred_at, e.event_id]
  if (options.showActor) cols.push(`by ${e.caused_by}`)
  cols.push(toJson(e.data))
  return cols
}

/** The human columns of an event of the log: position, stream and version, kind, type, time, id, (actor), data. */
export function logEventCells(e: RecordedEvent, options: EventViewOptions): string[] {
  const cols = [
    `@${e.global_position}`,
    `${streamOf(e)} v${e.stream_version}`,
    e.kind,
    e.type,
    e.occurred_at,
    e.event_id,
  ]
  if (options.showActor) cols.push(`by ${e.caused_by}`)
  cols.push(toJson(e.data))
  return cols
}

/** One human line of a live event: position, kind, stream and version, type, time, id (and actor). */
export function liveLine(e: RecordedEvent, options: EventViewOptions): string {
  const cols = [
    `@${e.global_position}`,
    e.kind.padEnd(8),
    `${streamOf(e)} v${e.stream_version}`,
    e.type,
    e.occurred_at,
    e.event_id,
  ]
  if (options.showActor) cols.push(`by ${e.caused_by}`)
  cols.push(toJson(e.data))
  return cols.join('  ')
}
