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
 * The connection's one confirmer. A WeakMap, not a count that drops the
 * confirmer with its last holder: a confirmer watches `nc.closed()` (to fail
 * its pending acks), and a reaction on that promise cannot be removed, so a
 * confirmer made per subscription (or again after each idle spell) stayed
 * reachable until the connection closed: a process re-subscribing on one
 * long-lived connection piled up one per subscription it ever made. Here the
 * watch is made once per connection and the entry goes with the connection;
 * what the count governs is the server-side part, the reply subscription.
 */
const byConnection = new WeakMap<NatsConnection, AckConfirmer>()

/**
 * Acks that resolve only once JetStream confirmed them, for every
 * subscription of one connection, without nats.js `JsMsg.ackAck`'s per-ack
 * request: that builds a request token, a timer and two `Error`s with stack
 * traces for every message (35–51 µs of CPU per event at 1k ev/s,
 * scripts/bench/sub-ack.ts, 28–42 % of what the subscriber costs above a bare
 * consumer). Here an ack is a core publish to the message's reply subject
 * with the reply `<inbox>.<ack number>` under one wildcard subscription on
 * the connection's own inbox prefix (the grant nats.js requests already use,
 * so no new permission), and one timer serves every deadline.
 *
 * One per connection ({@link AckConfirmer.for}), shared by the connection's
 * subscriptions: each {@link hold}s it while it runs and releases it when it
 * ends. The reply subscription opens with the first ack and ends once no
 * holder is left and no ack is pending (an ack after that opens it again), so
 * a connection has at most one, however often it re-subscribes.
 *
 * An ack fails with `bus.unavailable` when the consumer is gone (no
 * responders) or the connection closed, `bus.timeout` without an answer in
 * its `timeoutMs`.
 */
export class AckConfirmer {
  readonly #nc: NatsConnection
  /** `<inbox>.`: an ack's reply subject is this plus its ack number. */
  readonly #replyPrefix: string
  readonly #pending = new Map<number, PendingAck>()
  #sub: Subscription | undefined
  #timer: NodeJS.Timeout | undefined
  /** The deadline the timer is armed for. */
  #timerAt = Number.POSITIVE_INFINITY
  #next = 0
  #holders = 0

  /** The confirmer of `nc`, made on first use. */
  static for(nc: NatsConnection): AckConfirmer {
    let confirmer = byConnection.get(nc)
    if (confirmer === undefined) {
      confirmer = new AckConfirmer(nc)
      byConnection.set(nc, confirmer)
    }
    return confirmer
  }

  private constructor(nc: NatsConnection) {
    this.#nc = nc
    // nats.js keeps the connection's inbox prefix (option `inboxPrefix`, default `_INBOX`) on its options.
    const inboxPrefix = (nc as { options?: { inboxPrefix?: string } }).options?.inboxPrefix
    this.#replyPrefix = `${createInbox(inboxPrefix)}.`
    nc.closed().then(
      () => this.#failAll(connectionClosed()),
      () => {},
    )
  }

  /**
   * Keeps the reply subscription for a subscription until the returned release (idempotent) is called; it
   * ends once every holder released and the last pending ack settled.
   */
  hold(): () => void {
    this.#holders += 1
    let held = true
    return () => {
      if (!held) return
      held = false
      this.#holders -= 1
      this.#release()
    }
  }

  /** Acks the message delivered with reply subject `reply`; resolves when the server confirmed it. */
  ack(reply: string, options: { timeoutMs: number }): Promise<void> {
    if (this.#nc.isClosed()) return Promise.reject(connectionClosed())
    this.#sub ??= this.#open()
    const n = this.#next++
    return new Promise<void>((resolve, reject) => {
      const deadline = performance.now() + options.timeoutMs
      this.#pending.set(n, { resolve, reject, deadline })
      // Acks with one timeout come in deadline order: only a shorter timeout moves the timer.
      if (deadline < this.#timerAt) this.#arm(deadline)
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

  /**
   * Unref'd: it may outlive the last pending ack (see #release), and must not hold a process whose work is
   * done. A pending ack never needs it to: its connection is open (a closed one fails every ack at once).
   */
  #arm(deadline: number): void {
    clearTimeout(this.#timer)
    this.#timerAt = deadline
    this.#timer = setTimeout(() => this.#expire(), Math.max(0, deadline - performance.now()) + 1).unref()
  }

  /**
   * Fails every pending ack whose deadline passed and re-arms the timer for the earliest one left. A scan:
   * subscriptions with other timeouts share the map, so insertion order is not deadline order. It runs
   * once per deadline, not per ack.
   */
  #expire(): void {
    this.#timer = undefined
    this.#timerAt = Number.POSITIVE_INFINITY
    const now = performance.now()
    let earliest = Number.POSITIVE_INFINITY
    for (const [n, p] of this.#pending) {
      if (p.deadline <= now) this.#settle(n, ackUnconfirmed())
      else earliest = Math.min(earliest, p.deadline)
    }
    if (earliest !== Number.POSITIVE_INFINITY && this.#timer === undefined) this.#arm(earliest)
  }

  #failAll(error: unknown): void {
    for (const n of [...this.#pending.keys()]) this.#settle(n, error)
  }

  /**
   * Once nothing is pending and nobody holds the confirmer, its timer and reply subscription end. While a
   * subscription holds it the timer is left armed when the last ack settles: disarming it there made a
   * subscriber at a steady rate (each ack confirmed before the next is sent) arm and clear a timer per
   * ack. Left armed, it fires at the deadline it was set for, finds what is pending then (acks sent since
   * have later deadlines) and re-arms for the earliest of those, or stays disarmed.
   */
  #release(): void {
    if (this.#pending.size > 0 || this.#holders > 0) return
    clearTimeout(this.#timer)
    this.#timer = undefined
    this.#timerAt = Number.POSITIVE_INFINITY
    if (this.#sub === undefined) return
    this.#sub.unsubscribe()
    this.#sub = undefined
  }
}
