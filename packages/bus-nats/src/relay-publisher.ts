import type { RecordedEvent } from '@eventplane/core'
import { type JetStreamClient, JetStreamApiError } from '@nats-io/jetstream'
import { encodeEvent, eventHeaders } from './codec.ts'
import { SpanKind, TRACEPARENT_HEADER, eventParentContext, startEventSpan, traceparentOf } from './ops/trace-context.ts'
import { logSubject } from './subjects.ts'

/** JetStream API error: `Nats-Expected-Last-Msg-Id` did not match the stream's last message (nats-server errors.json). */
const WRONG_LAST_MSG_ID = 10070

export interface BatchOutcome {
  /** Length of the acked prefix: events `[0, acked)` are in the stream. */
  acked: number
  /** Acks within that prefix that said the stream already held the event. */
  duplicates: number
  /** Why the event at index `acked` was not acked; undefined when the whole batch was. */
  failure?: unknown
}

/**
 * Publishes events in log order with a bounded window of un-acked publishes,
 * each with `Nats-Msg-Id = event_id`. Within one unbroken run every publish
 * also carries `Nats-Expected-Last-Msg-Id` = the previous event's id, so the
 * stream can only store an event right after its predecessor: when the
 * connection drops, a publish lost on the dead socket can never be overtaken
 * by later ones the client buffered and flushed on reconnect. The first
 * publish of a run carries no expectation (everything before it is acked).
 * JetStream checks the duplicate id before the expectation, so republishing
 * stored events after a crash yields duplicate acks, not errors.
 */
export class OrderedPublisher {
  readonly #js: JetStreamClient
  readonly #maxInFlight: number
  readonly #timeoutMs: number
  #tip: string | undefined

  constructor(js: JetStreamClient, maxInFlight: number, timeoutMs: number) {
    this.#js = js
    this.#maxInFlight = maxInFlight
    this.#timeoutMs = timeoutMs
  }

  /** Starts a new run: the next publish carries no expectation. Call before republishing from a checkpoint. */
  resetChain(): void {
    this.#tip = undefined
  }

  /**
   * Publishes `batch` in order, at most `maxInFlight` un-acked at a time. The
   * first failure stops new publishes (and breaks the run); never throws.
   */
  async publishBatch(batch: readonly RecordedEvent[]): Promise<BatchOutcome> {
    const acked = new Array<boolean>(batch.length).fill(false)
    const duplicate = new Array<boolean>(batch.length).fill(false)
    const inFlight = new Set<Promise<void>>()
    let failure: unknown
    for (let i = 0; i < batch.length && failure === undefined; i++) {
      const event = batch[i]!
      const expectLast = this.#tip
      this.#tip = event.event_id
      const p: Promise<void> = this.#publish(event, expectLast).then(
        (dup) => {
          acked[i] = true
          duplicate[i] = dup
        },
        (e: unknown) => {
          failure ??= e
        },
      )
      const tracked = p.finally(() => inFlight.delete(tracked))
      inFlight.add(tracked)
      while (inFlight.size >= this.#maxInFlight) await Promise.race(inFlight)
    }
    await Promise.all(inFlight)
    const firstMissing = acked.indexOf(false)
    const prefix = firstMissing === -1 ? batch.length : firstMissing
    const duplicates = duplicate.slice(0, prefix).filter(Boolean).length
    if (firstMissing === -1) return { acked: prefix, duplicates }
    this.#tip = undefined
    return { acked: prefix, duplicates, failure: failure ?? new Error('publish was not acked') }
  }

  async #publish(e: RecordedEvent, expectLast: string | undefined): Promise<boolean> {
    const subject = logSubject(e.kind, e.tenant_id, e.stream.category, e.stream.id)
    // The relay reads events from PostgreSQL, where no trace context is stored: each publish hangs under the
    // event's own span context (trace id = correlation id, see eventSpanContext), so consumers join that trace.
    const span = startEventSpan('eventplane publish', SpanKind.PRODUCER, e, eventParentContext(e, undefined))
    const h = eventHeaders(e)
    const traceparent = traceparentOf(span)
    if (traceparent !== undefined) h.set(TRACEPARENT_HEADER, traceparent)
    try {
      const ack = await this.#js.publish(subject, encodeEvent(e), {
        msgID: e.event_id,
        headers: h,
        timeout: this.#timeoutMs,
        ...(expectLast === undefined ? {} : { expect: { lastMsgID: expectLast } }),
      })
      return ack.duplicate
    } finally {
      span.end()
    }
  }
}

/** The stream refused a publish because its predecessor is not the stream's last message: republish from the checkpoint. */
export function isOrderBreak(e: unknown): boolean {
  return e instanceof JetStreamApiError && e.code === WRONG_LAST_MSG_ID
}
