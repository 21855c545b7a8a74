import { channel } from 'node:diagnostics_channel'

/**
 * Timestamps of the relay's wake-up path, for tools that time one event's
 * way from append to subscriber (scripts/bench/bus-latency.ts). Published on
 * `node:diagnostics_channel` only while someone subscribes, so a relay that
 * nobody traces pays one `hasSubscribers` check per read and per wake-up.
 * Times are `performance.now()` of this process; payloads carry event ids,
 * never data.
 */
export const RELAY_TRACE = {
  /** A LISTEN notification reached the relay's waker: `{ at }`. */
  wake: channel('eventplane:relay.wake'),
  /** One gap-safe read of a drain returned: `{ startedAt, at, ids }` (`ids` empty when nothing was visible). */
  read: channel('eventplane:relay.read'),
  /** A drain is about to read; `exact`: its reads ask for the exact horizon (see horizonLookupMs): `{ at, exact }`. */
  horizon: channel('eventplane:relay.horizon'),
  /** The events of one read were handed to the publisher (encoded, sent to the socket buffer): `{ at, ids }`. */
  sent: channel('eventplane:relay.sent'),
  /** One drain ended (every publish acked, its last checkpoint set): `{ startedAt, at, events }`. */
  drain: channel('eventplane:relay.drain'),
} as const

export interface RelayWakeTrace {
  at: number
}

export interface RelayReadTrace {
  startedAt: number
  at: number
  ids: string[]
}

export interface RelayHorizonTrace {
  at: number
  exact: boolean
}

export interface RelaySentTrace {
  at: number
  ids: string[]
}

export interface RelayDrainTrace {
  startedAt: number
  at: number
  events: number
}

/** Publishes one read's timing on RELAY_TRACE.read; returns when the next read starts. */
export function traceRead(startedAt: number, rows: readonly { event_id: string }[]): number {
  const at = performance.now()
  RELAY_TRACE.read.publish({ startedAt, at, ids: rows.map((r) => r.event_id) })
  return at
}
