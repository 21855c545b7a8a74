/**
 * A position in the gap-safe global order: the pair `(tx_id, global_position)`
 * of the last event consumed. Both are bigints; never round-trip them through floats.
 */
export interface Checkpoint {
  txId: bigint
  position: bigint
}

/** Before the first event. */
export const START: Checkpoint = Object.freeze({ txId: 0n, position: 0n })

export function compareCheckpoints(a: Checkpoint, b: Checkpoint): number {
  if (a.txId !== b.txId) return a.txId < b.txId ? -1 : 1
  if (a.position !== b.position) return a.position < b.position ? -1 : 1
  return 0
}

/** `txId:position`, the text form used by the CLI and JSON output. */
export function formatCheckpoint(c: Checkpoint): string {
  return `${c.txId}:${c.position}`
}

export function parseCheckpoint(text: string): Checkpoint {
  const m = /^(\d{1,20}):(\d{1,20})$/.exec(text)
  if (!m) throw new RangeError(`checkpoint must look like <tx_id>:<position>, got ${JSON.stringify(text)}`)
  return { txId: BigInt(m[1]!), position: BigInt(m[2]!) }
}
