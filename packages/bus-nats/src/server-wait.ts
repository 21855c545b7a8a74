import type { NatsConnection } from '@nats-io/transport-node'

/**
 * How long a stop waits for the server to answer a drain or flush before it goes on without it: a healthy
 * server answers a PING in milliseconds, and a stop (SIGTERM) has 10 s in all before evtctl gives up on it.
 */
export const SERVER_WAIT_MS = 2000

/** How a {@link serverWait} ended: `op` settled (either way), the connection closed, or the deadline passed. */
export type ServerWaitOutcome = 'settled' | 'closed' | 'timed_out'

/** The timers of a {@link serverWait} deadline: node's, or a test's that fires them in the order it chooses. */
export interface DeadlineTimers {
  /** Calls `fn` once `ms` passed; returns what cancels it. */
  after(ms: number, fn: () => void): () => void
  /** Calls `fn` later in this turn of the event loop, once the I/O it found ready was read; returns what cancels it. */
  afterIo(fn: () => void): () => void
}

const NODE_TIMERS: DeadlineTimers = {
  after(ms, fn) {
    const timer = setTimeout(fn, ms)
    return () => clearTimeout(timer)
  },
  afterIo(fn) {
    const immediate = setImmediate(fn)
    return () => clearImmediate(immediate)
  },
}

/**
 * Waits for `op`, a drain or a flush of `nc` (anything only the server's answer settles), but no longer than
 * `nc` stays open nor `deadlineMs`. nats.js never settles a flush whose PING was queued while the connection
 * dialed a reconnect the server then refused (it closes for good without failing its pending PONGs: a revoked
 * user), and one queued on a stalled connection (a server or path that stopped answering) waits for its ping
 * timeout, minutes. Every stop path of the services waits through this, never on `op` alone. Never rejects:
 * a drain that failed leaves nothing more to wait for.
 *
 * The deadline is judged after the I/O that came by it: node runs due timers before it reads the sockets in a
 * turn of its loop, so a loop that lagged past the deadline (a loaded host, a long synchronous step) would
 * otherwise time out a wait whose answer was already there to read (measured: 3 flushes of 5 answered during a
 * 300 ms lag timed out at a 100 ms deadline). Only the answer in flight counts: a drain's second round trip,
 * sent once the first is answered, still has to come in time.
 */
export async function serverWait(
  nc: NatsConnection,
  op: Promise<unknown>,
  deadlineMs: number = SERVER_WAIT_MS,
  timers: DeadlineTimers = NODE_TIMERS,
): Promise<ServerWaitOutcome> {
  let cancel: (() => void) | undefined
  const deadline = new Promise<ServerWaitOutcome>((resolve) => {
    cancel = afterDeadlineAndIo(deadlineMs, () => resolve('timed_out'), timers)
  })
  try {
    return await Promise.race([
      op.then(
        () => 'settled' as const,
        () => 'settled' as const,
      ),
      nc.closed().then(
        () => 'closed' as const,
        () => 'closed' as const,
      ),
      deadline,
    ])
  } finally {
    cancel?.()
  }
}

/**
 * Calls `fn` once `ms` passed and the I/O ready in that turn of the event loop was read (see serverWait: a loop
 * that lagged past the deadline reads an answer that came in time before the deadline is judged). Returns what
 * cancels it, either step.
 */
export function afterDeadlineAndIo(ms: number, fn: () => void, timers: DeadlineTimers = NODE_TIMERS): () => void {
  let cancelIo: (() => void) | undefined
  const cancelTimer = timers.after(ms, () => {
    cancelIo = timers.afterIo(fn)
  })
  return () => {
    cancelTimer()
    cancelIo?.()
  }
}

/**
 * How long each later wait of a stop is given once one of its waits timed out (see {@link StopWaits}): the
 * server did not answer for SERVER_WAIT_MS, so the rest of the stop does not wait for it again, beyond what a
 * server that answers at all answers in.
 */
export const STALLED_WAIT_MS = 250

/**
 * The server waits of one stop: a process's parts stopped one after another (a gateway's subscription drain, a
 * relay's last drain), then its connections' drains. Together they wait for a server that stopped answering
 * about once, not once each: the first waits get SERVER_WAIT_MS, and once one timed out (or a part said its
 * stop was cut by its own deadline, {@link StopWaits.stalled}) every later one gets only STALLED_WAIT_MS,
 * still judged after the socket reads of its turn (an answer already there counts). A healthy stop never times
 * out, so each of its waits keeps its whole bound and it drains everything, in order.
 */
export class StopWaits {
  #stalled = false

  constructor(readonly timers: DeadlineTimers = NODE_TIMERS) {}

  /** True once a wait of this stop timed out: the server is taken as not answering. */
  get isStalled(): boolean {
    return this.#stalled
  }

  /** The server did not answer a wait of this stop made elsewhere (a relay's last drain cut at its deadline). */
  stalled(): void {
    this.#stalled = true
  }

  /** How long the next wait may take: `ownMs` (default SERVER_WAIT_MS), at most STALLED_WAIT_MS once stalled. */
  ms(ownMs: number = SERVER_WAIT_MS): number {
    return this.#stalled ? Math.min(ownMs, STALLED_WAIT_MS) : ownMs
  }

  /** {@link serverWait} for `op` on `nc` for {@link ms}; a timeout marks the stop stalled. */
  async wait(nc: NatsConnection, op: Promise<unknown>): Promise<{ outcome: ServerWaitOutcome; waitedMs: number }> {
    const waitedMs = this.ms()
    const outcome = await serverWait(nc, op, waitedMs, this.timers)
    if (outcome === 'timed_out') this.#stalled = true
    return { outcome, waitedMs }
  }
}
