/** A relay's advisory lock key, and as pg_locks shows a bigint key: high half in classid, low half in objid. */
export interface RelayLockKey {
  key: string
  classid: string
  objid: string
}

/**
 * The advisory lock key of relay `name`: a stable signed 64-bit FNV-1a hash of
 * `eventplane.relay/<name>`, the same in every relay process and in the status.
 */
export function relayLockKey(name: string): RelayLockKey {
  let hash = 0xcbf29ce484222325n
  for (const byte of new TextEncoder().encode(`eventplane.relay/${name}`)) {
    hash ^= BigInt(byte)
    hash = BigInt.asUintN(64, hash * 0x100000001b3n)
  }
  const unsigned = hash
  return {
    key: BigInt.asIntN(64, hash).toString(),
    classid: (unsigned >> 32n).toString(),
    objid: (unsigned & 0xffffffffn).toString(),
  }
}
