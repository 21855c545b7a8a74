import { setTimeout as sleep } from 'node:timers/promises'
import { EventplaneError, Unavailable, isEventplaneError } from '@eventplane/core'
import { errorFields, type Logger } from './logger.ts'

/** Sends of one ack before its failure is final (the first included). */
export const DEFAULT_ACK_ATTEMPTS = 3
/** Wait before the second send of an ack; it doubles for each later one. */
export const DEFAULT_ACK_RETRY_DELAY_MS = 100

/**
 * How a delivery's ack is retried when its confirmation does not come (see {@link resendAck}). Each send waits
 * the client's timeout (5 s by default), and a consumer-info request (the same timeout) comes before each
 * retry: with the defaults an ack gives up after ~25 s at worst, inside the consumer's 30 s default ack wait.
 * Past the ack wait a retry still settles the message, but it may have been redelivered meanwhile.
 */
export interface AckRetryOptions {
  /** Sends of the same ack before `ack()` fails; 1 sends it once. Default {@link DEFAULT_ACK_ATTEMPTS}. */
  attempts?: number
  /** Wait before the second send, doubling after; default {@link DEFAULT_ACK_RETRY_DELAY_MS}. */
  delayMs?: number
}

/** What one delivery's ack needs from its subscription, beside the options. */
export interface AckRetryContext {
  /** Sends the ack once; resolves when JetStream confirmed it, rejects with a typed error otherwise. */
  send(): Promise<void>
  connectionClosed(): boolean
  /** Whether the consumer still exists: false when JetStream says it is gone, undefined when it could not tell. */
  consumerExists(): Promise<boolean | undefined>
  /** Ids for the log and the final error: never the event's data. */
  ids: { consumer: string; seq: number; event_id: string }
  logger: Logger
}

/** Unconfirmed (timeout) or not taken (no responders, a blip of the connection): worth another send. */
const retryable = (e: unknown): boolean =>
  isEventplaneError(e, 'bus.timeout') || isEventplaneError(e, 'bus.unavailable')

/**
 * What follows a failed send of a delivery's ack (`first`, the failure of
 * send 1): the same ack sent again, up to `attempts` sends in all, `delayMs`
 * (doubling) apart, until JetStream confirms it. Sending the same ack again
 * is safe: JetStream takes an ack by stream sequence, and an ack of a message
 * already acked is confirmed and changes nothing. A lost confirmation (a
 * timeout, a reconnect that swallowed the ack or its reply) would otherwise
 * leave the message to be redelivered after the consumer's ack wait and
 * handled again. The first send is the caller's, so an ack confirmed at once
 * costs nothing here.
 *
 * It stops at once when the connection is closed, and when the consumer is
 * gone: after a failed send it asks for the consumer's info (a grant every
 * consumer user has), and a consumer JetStream does not know fails the ack
 * with `bus.unavailable` without waiting out further sends, since across a
 * tenant's account import an ack of a deleted consumer is never answered.
 * The final error keeps the last send's code (`bus.timeout` or
 * `bus.unavailable`) and carries `consumer`, `seq`, `event_id` and
 * `attempts` in its details.
 */
export async function resendAck(first: unknown, ctx: AckRetryContext, options: AckRetryOptions = {}): Promise<void> {
  const attempts = Math.max(1, options.attempts ?? DEFAULT_ACK_ATTEMPTS)
  const delayMs = options.delayMs ?? DEFAULT_ACK_RETRY_DELAY_MS
  let failure = first
  for (let attempt = 1; ; attempt++) {
    if (attempt >= attempts || !retryable(failure) || ctx.connectionClosed()) throw finalError(failure, ctx, attempt)
    if ((await ctx.consumerExists()) === false) throw consumerGone(failure, ctx, attempt)
    const wait = delayMs * 2 ** (attempt - 1)
    ctx.logger.warn(
      { ...ctx.ids, attempt, attempts, retry_in_ms: wait, ...errorFields(failure) },
      'ack not confirmed, sending it again',
    )
    await sleep(wait)
    if (ctx.connectionClosed()) throw finalError(failure, ctx, attempt)
    try {
      await ctx.send()
      ctx.logger.info({ ...ctx.ids, attempt: attempt + 1 }, 'ack confirmed on a later attempt')
      return
    } catch (e) {
      failure = e
    }
  }
}

function finalError(e: unknown, ctx: AckRetryContext, attempts: number): unknown {
  if (!isEventplaneError(e)) return e
  const options = { cause: e, details: { ...e.details, ...ctx.ids, attempts } }
  const message = attempts > 1 ? `${e.message} (after ${attempts} attempts)` : e.message
  return e.code === 'bus.unavailable'
    ? new Unavailable('bus.unavailable', message, options)
    : new EventplaneError(e.code, message, options)
}

function consumerGone(e: unknown, ctx: AckRetryContext, attempts: number): EventplaneError {
  return new Unavailable('bus.unavailable', `consumer ${ctx.ids.consumer} is gone: nothing will take the ack`, {
    cause: e,
    details: { ...ctx.ids, attempts },
  })
}
