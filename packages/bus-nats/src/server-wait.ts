import type { NatsConnection } from '@nats-io/transport-node'

/**
 * How long a stop waits for the server to answer a drain or flush before it goes on without it: a healthy
 * server answers a PING in milliseconds, and a stop (SIGTERM) has 10 s in all before evtctl gives up on it.
 */
export const SERVER_WAIT_MS = 2000

/** How a {@link serverWait} ended: `op` settled (either way), the connection closed, or the deadline passed. */
export type ServerWaitOutcome = 'settled' | 'closed' | 'timed_out'

/**
 * Waits for `op`, a drain or a flush of `nc` (anything only the server's answer settles), but no longer than
 * `nc` stays open nor `deadlineMs`. nats.js never settles a flush whose PING was queued while the connection
 * dialed a reconnect the server then refused (it closes for good without failing its pending PONGs: a revoked
 * user), and one queued on a stalled connection (a server or path that stopped answering) waits for its ping
 * timeout, minutes. Every stop path of the services waits through this, never on `op` alone. Never rejects:
 * a drain that failed leaves nothing more to wait for.
 */
export async function serverWait(
  nc: NatsConnection,
  op: Promise<unknown>,
  deadlineMs: number = SERVER_WAIT_MS,
): Promise<ServerWaitOutcome> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<ServerWaitOutcome>((resolve) => {
    timer = setTimeout(resolve, deadlineMs, 'timed_out')
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
    clearTimeout(timer)
  }
}
