import {
  type Context,
  type Span,
  type SpanContext,
  ProxyTracerProvider,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  TraceFlags,
  isSpanContextValid,
  trace,
} from '@opentelemetry/api'
import { EventplaneError } from '@eventplane/core'

/** The W3C Trace Context header, carried in NATS headers (submit requests and log messages). */
export const TRACEPARENT_HEADER = 'traceparent'

/** The tracer every eventplane hop uses; a no-op until the process registers an OpenTelemetry SDK. */
export const TRACER_NAME = 'eventplane'

// A ProxyTracer: it finds the registered SDK's tracer at its first use after registration, so it is safe to keep.
const tracer = trace.getTracer(TRACER_NAME)

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/
const ZERO_TRACE = '0'.repeat(32)
const ZERO_SPAN = '0'.repeat(16)

/** `00-<trace id>-<span id>-<flags>` (W3C Trace Context, version 00). */
export function formatTraceparent(sc: SpanContext): string {
  return `00-${sc.traceId}-${sc.spanId}-${(sc.traceFlags & 0xff).toString(16).padStart(2, '0')}`
}

/** The span context a `traceparent` value names, or undefined when absent or malformed (then ignored, never an error). */
export function parseTraceparent(value: string | undefined): SpanContext | undefined {
  const m = value === undefined ? null : TRACEPARENT.exec(value.trim())
  if (m === null || m[1] === ZERO_TRACE || m[2] === ZERO_SPAN) return undefined
  return { traceId: m[1]!, spanId: m[2]!, traceFlags: Number.parseInt(m[3]!, 16), isRemote: true }
}

/** The 32 hex digits of a UUID (its 128 bits). */
function uuidHex(uuid: unknown): string {
  if (typeof uuid !== 'string') return ''
  // The canonical 8-4-4-4-12 text (PostgreSQL's, on the relay's hot path): cut the dashes out by position.
  const canonical = uuid.length === 36 && uuid[8] === '-' && uuid[13] === '-' && uuid[18] === '-' && uuid[23] === '-'
  const hex = canonical
    ? uuid.slice(0, 8) + uuid.slice(9, 13) + uuid.slice(14, 18) + uuid.slice(19, 23) + uuid.slice(24)
    : uuid.replaceAll('-', '')
  return hex.toLowerCase()
}

/**
 * The span context that stands for an event when no parent came with it:
 * trace id = the event's `correlation_id` (both 128 bits: the UUID's hex
 * digits), span id = the last 64 bits of its `event_id` (the random part of a
 * UUIDv7), sampled. So every hop of every event of one causation tree lands
 * in one trace, whichever process handles it and even after a replay, and a
 * stored chain (`evtctl trace`) maps onto it without any stored trace state.
 */
export function eventSpanContext(e: { event_id: string; correlation_id: string }): SpanContext {
  return {
    traceId: uuidHex(e.correlation_id),
    spanId: uuidHex(e.event_id).slice(16),
    traceFlags: TraceFlags.SAMPLED,
    isRemote: true,
  }
}

/**
 * The `traceparent` of {@link eventSpanContext} (sampled), formatted from the
 * ids alone: what a hop with no SDK registered propagates for `e`.
 */
export function eventTraceparent(e: { event_id: string; correlation_id: string }): string {
  return `00-${uuidHex(e.correlation_id)}-${uuidHex(e.event_id).slice(16)}-01`
}

/**
 * Whether a process registered an OpenTelemetry SDK (a tracer provider behind
 * the API's global proxy). Without one every span is a non-recording span
 * that only carries its parent's context, so a hot path may skip starting it
 * and propagate {@link eventTraceparent} instead.
 */
export function tracerInstalled(): boolean {
  const provider = trace.getTracerProvider()
  return !(provider instanceof ProxyTracerProvider) || provider.getDelegateTracer(TRACER_NAME) !== undefined
}

/** What a hop's span hangs under: the `traceparent` that came with the message, else the event's own span context. */
export function eventParentContext(
  e: { event_id: string; correlation_id: string },
  traceparent: string | undefined,
): Context {
  return trace.setSpanContext(ROOT_CONTEXT, parseTraceparent(traceparent) ?? eventSpanContext(e))
}

/** The fields every event span carries (ids only, never data). */
function eventAttributes(e: {
  event_id: string
  correlation_id: string
  causation_id?: string | null
  tenant_id?: string
  type?: string
}): Record<string, string> {
  return {
    'eventplane.event_id': e.event_id,
    'eventplane.correlation_id': e.correlation_id,
    ...(e.causation_id ? { 'eventplane.causation_id': e.causation_id } : {}),
    ...(e.tenant_id ? { 'eventplane.tenant': e.tenant_id } : {}),
    ...(e.type ? { 'eventplane.type': e.type } : {}),
  }
}

export type EventForSpan = Parameters<typeof eventAttributes>[0]

/**
 * Starts the span of one hop of event `e` under `parent` (see
 * eventParentContext). An event with a cause links to the cause's span
 * context, so the causation tree is visible in the trace. With no SDK
 * registered this is the API's non-recording span, carrying the parent's
 * context: what it propagates is then the parent's `traceparent` unchanged.
 */
export function startEventSpan(name: string, kind: SpanKind, e: EventForSpan, parent: Context): Span {
  const span = tracer.startSpan(name, { kind }, parent)
  // Attributes and the link only for a recording span: the relay starts one per event, and without an SDK
  // building them would be most of the cost.
  if (span.isRecording()) {
    span.setAttributes(eventAttributes(e))
    if (e.causation_id)
      span.addLink({ context: eventSpanContext({ event_id: e.causation_id, correlation_id: e.correlation_id }) })
  }
  return span
}

/**
 * Runs `work` inside the span {@link startEventSpan} starts; a failure marks
 * the span as an error with its eventplane code and is thrown on.
 */
export async function inEventSpan<T>(
  name: string,
  kind: SpanKind,
  e: EventForSpan,
  parent: Context,
  work: (span: Span) => Promise<T>,
): Promise<T> {
  const span = startEventSpan(name, kind, e, parent)
  try {
    return await work(span)
  } catch (err) {
    span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof EventplaneError ? err.code : 'failed' })
    throw err
  } finally {
    span.end()
  }
}

/** The `traceparent` to send for `span`, or undefined when it has no valid context. */
export function traceparentOf(span: Span): string | undefined {
  const sc = span.spanContext()
  return isSpanContextValid(sc) ? formatTraceparent(sc) : undefined
}

/** The active span context, if a caller set one (an application's own trace). */
export function activeContext(ctx: Context): Context | undefined {
  const sc = trace.getSpanContext(ctx)
  return sc !== undefined && isSpanContextValid(sc) ? ctx : undefined
}

export { SpanKind }
