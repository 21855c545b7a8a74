import { relayLockKey as relayKey } from '@eventplane/bus-nats'

/**
 * The relay's advisory lock key as pg_locks shows it: the signed 64-bit key of
 * bus-nats `relayLockKey`, split into classid = high half, objid = low half.
 */
export function relayLockKey(name: string): { key: bigint; classid: string; objid: string } {
  const key = relayKey(name)
  const unsigned = BigInt.asUintN(64, key)
  return { key, classid: (unsigned >> 32n).toString(), objid: (unsigned & 0xffffffffn).toString() }
}
