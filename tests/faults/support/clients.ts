import { setTimeout as sleep } from 'node:timers/promises'
import { type EventEnvelope, EventFactory, RateLimited, isEventplaneError } from '@eventplane/core'
import { type SubmitIntentOptions, type SubmitResult, submitIntent } from '@eventplane/bus-nats'
import type { NatsConnection } from '@nats-io/transport-node'

/**
 * What a client retries with the same event id: the gateway or PostgreSQL was unreachable, the reply
 * was lost, or the gateway refused it for now (its tenant over its limits: nothing was written).
 */
export const RETRYABLE = new Set(['bus.timeout', 'bus.unavailable', 'store.unavailable', 'bus.rate_limited'])

/** How long to wait before retrying after `e`: the gateway's retry-after when it gave one, else `backoffMs`. */
export function retryDelay(e: unknown, backoffMs: number): number {
  return e instanceof RateLimited ? Math.max(backoffMs, e.retryAfterMs) : backoffMs
}

/** What the clients of one run saw. */
export class Ledger {
  /** Acknowledged appends: event id → what the gateway said it recorded. */
  readonly acked = new Map<string, SubmitResult>()
  /** Failed attempts by error code (retried ones included). */
  readonly errors = new Map<string, number>()
  /** Events acknowledged only after at least one failed attempt. */
  retried = 0
  /** Events whose reply never came (`bus.timeout`): recorded or not, the client cannot tell. */
  readonly timedOut = new Set<string>()

  count(code: string): number {
    return this.errors.get(code) ?? 0
  }

  note(code: string): void {
    this.errors.set(code, this.count(code) + 1)
  }

  /** `code=n` pairs, for diagnostics. */
  summary(): string {
    return [...this.errors].map(([code, n]) => `${code}=${n}`).join(' ') || 'none'
  }
}

export interface RetryOptions extends SubmitIntentOptions {
  /** Give up (throw) after this instant (Date.now() ms). */
  deadline: number
  /** Give up (throw) once aborted: the test is over. */
  signal?: AbortSignal
}

/**
 * Submits `event` until the gateway acknowledges it, retrying the very same
 * envelope (same event id) on a retryable error with a short capped backoff.
 * Any other error, or the deadline, is thrown.
 */
export async function submitUntilAcked(
  nc: NatsConnection,
  event: EventEnvelope,
  ledger: Ledger,
  options: RetryOptions,
): Promise<SubmitResult> {
  const { deadline, signal, ...submitOptions } = options
  for (let attempt = 1; ; attempt++) {
    signal?.throwIfAborted()
    try {
      const result = await submitIntent(nc, event, submitOptions)
      ledger.acked.set(event.event_id, result)
      if (attempt > 1) ledger.retried++
      return result
    } catch (e) {
      const code = isEventplaneError(e) ? e.code : 'unexpected'
      ledger.note(code)
      if (code === 'bus.timeout') ledger.timedOut.add(event.event_id)
      if (!RETRYABLE.has(code)) throw e
      if (Date.now() > deadline)
        throw new Error(`event ${event.event_id} not acknowledged in time (last error ${code})`, { cause: e })
      await sleep(retryDelay(e, Math.min(25 * 2 ** attempt, 250)))
    }
  }
}

export interface IntentLoadOptions {
  /** One client per entry: its tenant and its own connection as that tenant. */
  clients: Array<{ tenant: string; nc: NatsConnection }>
  eventsPerClient: number
  /** Streams per tenant the clients spread over (`load-0` …). */
  streams: number
  timeoutMs: number
  deadlineMs: number
}

/**
 * Clients submitting intents concurrently, each one event at a time, retried
 * until acknowledged. `done` rejects when an event could not be acknowledged
 * before the deadline, failed with a non-retryable error, or `stop()` was called.
 */
export function startIntentLoad(options: IntentLoadOptions): {
  ledger: Ledger
  done: Promise<void>
  total: number
  stop(): void
} {
  const ledger = new Ledger()
  const deadline = Date.now() + options.deadlineMs
  const abort = new AbortController()
  const run = async (client: { tenant: string; nc: NatsConnection }, index: number): Promise<void> => {
    const factory = EventFactory.forTenant(client.tenant, { causedBy: `user:client-${index}` })
    for (let i = 0; i < options.eventsPerClient; i++) {
      const stream = { tenant: client.tenant, category: 'deployment', id: `load-${(index + i) % options.streams}` }
      const event = factory.intent(stream, 'scaled', { client: index, n: i })
      await submitUntilAcked(client.nc, event, ledger, { deadline, timeoutMs: options.timeoutMs, signal: abort.signal })
    }
  }
  const done = Promise.all(options.clients.map(run)).then(() => undefined)
  done.catch(() => {})
  return { ledger, done, total: options.clients.length * options.eventsPerClient, stop: () => abort.abort() }
}
