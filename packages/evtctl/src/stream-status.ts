import { STREAM_NAME, streamInfo } from '@eventplane/bus-nats'
import type { StreamInfo } from '@nats-io/jetstream'
import { toEventplaneError } from './exit-codes.ts'
import { sessionJetStream } from './jetstream-check.ts'
import type { Session } from './session.ts'

/** The fill (percent of `max_bytes`) at which `status --check` calls the log stream a problem, by default. */
export const DEFAULT_MAX_STREAM_FILL = 90

/**
 * The log stream (EVENTPLANE) as `status --json` shows it; counts are decimal strings. Every tenant's events
 * go through it, and it refuses new messages once full (`discard: new`): the relay then stops publishing for
 * every tenant until there is room (the PostgreSQL log keeps every event meanwhile).
 */
export interface StreamReport {
  name: string
  /** Why NATS could not tell the stream's state (then `found` is false, every count null); null when it answered. */
  unknown: string | null
  /** False when the stream does not exist (no relay has started yet, or it was deleted). */
  found: boolean
  messages: string | null
  bytes: string | null
  /** The stream's byte limit; null when it has none (or it is not known). */
  max_bytes: string | null
  /** `bytes` in percent of `max_bytes`, rounded down to two decimals; null without a limit. */
  fill_percent: number | null
  /** The stream's `max_age` in ms; null when messages are kept forever (0, eventplane's default) or not known. */
  max_age_ms: number | null
}

function reportOf(info: StreamInfo): StreamReport {
  const { bytes, messages } = info.state
  const maxBytes = info.config.max_bytes > 0 ? info.config.max_bytes : null
  const maxAgeNanos = Number(info.config.max_age ?? 0)
  return {
    name: STREAM_NAME,
    unknown: null,
    found: true,
    messages: String(messages),
    bytes: String(bytes),
    max_bytes: maxBytes === null ? null : String(maxBytes),
    // Rounded down: a fill shown as 90.00 is at least 90 %, as the check judges it.
    fill_percent: maxBytes === null ? null : Number((BigInt(bytes) * 10_000n) / BigInt(maxBytes)) / 100,
    max_age_ms: maxAgeNanos > 0 ? Math.round(maxAgeNanos / 1e6) : null,
  }
}

const notKnown = (unknown: string | null): StreamReport => ({
  name: STREAM_NAME,
  unknown,
  found: false,
  messages: null,
  bytes: null,
  max_bytes: null,
  fill_percent: null,
  max_age_ms: null,
})

/**
 * The log stream's messages, bytes and limits from its stream info. Uses the configured NATS credentials:
 * reading `$JS.API.STREAM.INFO.EVENTPLANE` is granted to the operator (every JetStream API of the log
 * account), the relay and the controller users; a failure is reported, not thrown.
 */
export async function collectStream(session: Session): Promise<StreamReport> {
  try {
    const jsm = await sessionJetStream(session)
    const info = await streamInfo(jsm)
    return info === undefined ? notKnown(null) : reportOf(info)
  } catch (e) {
    return notKnown((await toEventplaneError(e)).message)
  }
}

/**
 * What `status --check` finds wrong with the log stream: NATS could not tell its state, it does not exist, or
 * its fill is at or above `maxFillPercent` (judged on the exact bytes, not the rounded percent).
 */
export function streamProblems(r: StreamReport, maxFillPercent: number): string[] {
  if (r.unknown !== null) return [`stream ${r.name} state unknown: ${r.unknown}`]
  if (!r.found) return [`stream ${r.name} does not exist (the relay creates it when it starts)`]
  if (r.max_bytes === null || r.bytes === null) return []
  if (BigInt(r.bytes) * 100n < BigInt(maxFillPercent) * BigInt(r.max_bytes)) return []
  return [
    `stream ${r.name} is ${r.fill_percent}% full (${r.bytes} of ${r.max_bytes} bytes, ` +
      `at or above ${maxFillPercent}%): once full the relay stops publishing for every tenant`,
  ]
}

const UNITS = ['KiB', 'MiB', 'GiB', 'TiB'] as const

/** `n` bytes in the largest binary unit it reaches, one decimal (`3.5 GiB`); below 1 KiB as `<n> B`. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`
  let value = n / 1024
  let unit = 0
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024
    unit++
  }
  return `${value.toFixed(1)} ${UNITS[unit]}`
}

/** `ms` as whole days, hours, minutes and seconds, the zero parts left out (`7d`, `1h30m`); under a second as ms. */
export function formatDuration(ms: number): string {
  let s = Math.floor(ms / 1000)
  if (s === 0) return `${ms}ms`
  const parts: string[] = []
  for (const [unit, size] of [
    ['d', 86_400],
    ['h', 3600],
    ['m', 60],
    ['s', 1],
  ] as const) {
    if (s >= size) {
      parts.push(`${Math.floor(s / size)}${unit}`)
      s %= size
    }
  }
  return parts.join('')
}

/** The human line of the log stream. */
export function streamLine(r: StreamReport): string {
  if (r.unknown !== null) return `stream      ${r.name} unknown: ${r.unknown}`
  if (!r.found) return `stream      ${r.name} does not exist (the relay creates it when it starts)`
  const human = formatBytes(Number(r.bytes))
  const size =
    r.max_bytes === null
      ? `${r.bytes} bytes (${human}), no max_bytes limit`
      : `${r.fill_percent}% full, ${r.bytes} of ${r.max_bytes} bytes (${human} of ${formatBytes(Number(r.max_bytes))})`
  const age = r.max_age_ms === null ? '' : `, max_age ${formatDuration(r.max_age_ms)}`
  return `stream      ${r.name}: ${size}, ${r.messages} messages${age}`
}
