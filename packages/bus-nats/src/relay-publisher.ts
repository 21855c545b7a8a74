import { type JetStreamClient, JetStreamApiError } from '@nats-io/jetstream'
import { SpanKind, TRACEPARENT_HEADER, eventParentContext, startEventSpan, traceparentOf } from './ops/trace-context.ts'
import type { RelayMessage } from './relay-encode.ts'

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
   * Publishes `batch` in order, at most `maxInFlight` un-acked at a time (a
   * slot freed by any ack lets the next publish go). The first failure stops
   * new publishes (and breaks the run); never throws.
   */
  async publishBatch(batch: readonly RelayMessage[]): Promise<BatchOutcome> {
    const acked = new Array<boolean>(batch.length).fill(false)
    const duplicate = new Array<boolean>(batch.length).fill(false)
    let inFlight = 0
    let slotFreed: (() => void) | undefined
    let failure: unknown
    const settled = (): void => {
      inFlight--
      const wake = slotFreed
      slotFreed = undefined
      wake?.()
    }
    for (let i = 0; i < batch.length && failure === undefined; i++) {
      const message = batch[i]!
      const expectLast = this.#tip
      this.#tip = message.eventId
      inFlight++
      this.#publish(message, expectLast).then(
        (dup) => {
          acked[i] = true
          duplicate[i] = dup
          settled()
        },
        (e: unknown) => {
          failure ??= e
          settled()
        },
      )
      while (inFlight >= this.#maxInFlight) await new Promise<void>((resolve) => (slotFreed = resolve))
    }
    while (inFlight > 0) await new Promise<void>((resolve) => (slotFreed = resolve))
    const firstMissing = acked.indexOf(false)
    const prefix = firstMissing === -1 ? batch.length : firstMissing
    let duplicates = 0
    for (let i = 0; i < prefix; i++) if (duplicate[i]) duplicates++
    if (firstMissing === -1) return { acked: prefix, duplicates }
    this.#tip = undefined
    return { acked: prefix, duplicates, failure: failure ?? new Error('publish was not acked') }
  }

  async #publish(m: RelayMessage, expectLast: string | undefined): Promise<boolean> {
    // The relay reads events from PostgreSQL, where no trace context is stored: each publish hangs under the
    // event's own span context (trace id = correlation id, see eventSpanContext), so consumers join that trace.
    const e = {
      event_id: m.eventId,
      correlation_id: m.correlationId,
      causation_id: m.causationId,
      tenant_id: m.tenantId,
      type: m.type,
    }
    const span = startEventSpan('eventplane publish', SpanKind.PRODUCER, e, eventParentContext(e, undefined))
    const traceparent = traceparentOf(span)
    if (traceparent !== undefined) m.headers.set(TRACEPARENT_HEADER, traceparent)
    try {
      const ack = await this.#js.publish(m.subject, m.bytes, {
        msgID: m.eventId,
        headers: m.headers,
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
