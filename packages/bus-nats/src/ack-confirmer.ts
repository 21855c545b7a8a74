import { type Msg, type NatsConnection, type Subscription, createInbox } from '@nats-io/transport-node'
import { ackNotTaken, ackUnconfirmed, connectionClosed } from './nats-errors.ts'

const ACK = new TextEncoder().encode('+ACK')
const NO_RESPONDERS = 503

interface PendingAck {
  resolve: () => void
  reject: (e: unknown) => void
  deadline: number
}

/**
 * Acks that resolve only once JetStream confirmed them, for one subscription,
 * without nats.js `JsMsg.ackAck`'s per-ack request: that builds a request
 * token, a timer and two `Error`s with stack traces for every message
 * (35–51 µs of CPU per event at 1k ev/s, scripts/bench/sub-ack.ts, 28–42 %
 * of what the subscriber costs above a bare consumer). Here an ack is
 * a core publish to the message's reply subject with the reply `<inbox>.<ack number>` under one
 * wildcard subscription on the connection's own inbox prefix (the grant
 * nats.js requests already use, so no new permission), and one timer serves
 * every deadline (acks are sent in order with the same timeout, so the
 * oldest pending one expires first).
 *
 * An ack fails with `bus.unavailable` when the consumer is gone (no
 * responders) or the connection closed, `bus.timeout` without an answer in
 * `timeoutMs`. The reply subscription opens with the first ack and ends once
 * `close()` was called and no ack is pending (an ack after that opens it again).
 */
export class AckConfirmer {
  readonly #nc: NatsConnection
  readonly #timeoutMs: number
  /** `<inbox>.`: an ack's reply subject is this plus its ack number. */
  readonly #replyPrefix: string
  readonly #pending = new Map<number, PendingAck>()
  #sub: Subscription | undefined
  #timer: NodeJS.Timeout | undefined
  #next = 0
  #closing = false

  constructor(nc: NatsConnection, options: { timeoutMs: number }) {
    this.#nc = nc
    this.#timeoutMs = options.timeoutMs
    // nats.js keeps the connection's inbox prefix (option `inboxPrefix`, default `_INBOX`) on its options.
    const inboxPrefix = (nc as { options?: { inboxPrefix?: string } }).options?.inboxPrefix
    this.#replyPrefix = `${createInbox(inboxPrefix)}.`
    nc.closed().then(
      () => this.#failAll(connectionClosed()),
      () => {},
    )
  }

  /** Acks the message delivered with reply subject `reply`; resolves when the server confirmed it. */
  ack(reply: string): Promise<void> {
    if (this.#nc.isClosed()) return Promise.reject(connectionClosed())
    this.#sub ??= this.#open()
    const n = this.#next++
    return new Promise<void>((resolve, reject) => {
      this.#pending.set(n, { resolve, reject, deadline: performance.now() + this.#timeoutMs })
      this.#timer ??= setTimeout(() => this.#expire(), this.#timeoutMs)
      try {
        this.#nc.publish(reply, ACK, { reply: this.#replyPrefix + n })
      } catch (e) {
        this.#settle(n, e)
      }
    })
  }

  /** Acks still waiting for the server's confirmation. */
  get pending(): number {
    return this.#pending.size
  }

  /** Ends the reply subscription once no ack is pending (now, or when the last one settles). */
  close(): void {
    this.#closing = true
    this.#release()
  }

  #open(): Subscription {
    return this.#nc.subscribe(`${this.#replyPrefix}*`, {
      callback: (err, m) => (err === null ? this.#answered(m) : this.#failAll(err)),
    })
  }

  #answered(m: Msg): void {
    const n = Number(m.subject.slice(this.#replyPrefix.length))
    // The consumer (or its stream) is gone: nothing took the ack.
    if (m.headers?.code === NO_RESPONDERS) this.#settle(n, ackNotTaken(m.subject))
    else this.#settle(n, undefined)
  }

  #settle(n: number, error: unknown): void {
    const p = this.#pending.get(n)
    // A late answer to an ack that timed out settles nothing.
    if (p === undefined) return
    this.#pending.delete(n)
    if (error === undefined) p.resolve()
    else p.reject(error)
    this.#release()
  }

  /** Fails every pending ack whose deadline passed, and re-arms the timer for the next one (the oldest first). */
  #expire(): void {
    this.#timer = undefined
    const now = performance.now()
    for (const [n, p] of this.#pending) {
      const left = p.deadline - now
      if (left > 0) {
        this.#timer = setTimeout(() => this.#expire(), left + 1)
        return
      }
      this.#settle(n, ackUnconfirmed())
    }
  }

  #failAll(error: unknown): void {
    for (const n of [...this.#pending.keys()]) this.#settle(n, error)
  }

  #release(): void {
    if (this.#pending.size > 0) return
    clearTimeout(this.#timer)
    this.#timer = undefined
    if (!this.#closing || this.#sub === undefined) return
    this.#sub.unsubscribe()
    this.#sub = undefined
  }
}
