import { join } from 'node:path'
import { EventplaneError, isEventplaneError } from '@eventplane/core'
import type { KeyPair } from '@nats-io/nkeys'
import type { NatsConnection } from '@nats-io/transport-node'
import { type AuthDir, operatorSigningKeys, writeAccountJwt } from './auth-dir.ts'
import { withAuthDirLock } from './auth-lock.ts'
import { requireOnline } from './offline-key.ts'
import { LOG_ACCOUNT, SYSTEM_ACCOUNT, operatorJwt } from './claims.ts'
import { pushAccountJwt } from './claims-push.ts'
import { writeFileAtomic } from './revocations.ts'
import {
  ensureNextSigningKey,
  ensureSigningKey,
  markSigningKeysPushed,
  promoteNextSigningKey,
  readSigningKeys,
} from './signing-keys.ts'
import type { ConnectSystemUser } from './system-rotate.ts'
import { listTenants, recordAccountJwt, tombstoneAccountJwt } from './tenants.ts'

const OPERATOR = { operator: true } as const

/** What one step of {@link rotateOperatorSigningKey} did. */
export interface OperatorRotationStep {
  /**
   * `staged`: a new operator signing key is listed in `operator.jwt` next to the current one; the server must be
   * restarted with a re-generated config before the next step. `done`: every account JWT is signed by the new key
   * and pushed, and `operator.jwt` lists it alone; the server trusts the old key until it is restarted again.
   */
  step: 'staged' | 'done'
  /** The new operator signing key (public). */
  key: string
  /** The key it replaces (public); with `done`, no longer in `operator.jwt`. */
  old: string
  /** The accounts whose JWTs were signed by the new key and pushed (`done`). */
  pushed: string[]
}

/**
 * Rotates the operator's signing key, the key that signs every account JWT.
 * The operator JWT lives in the server's config, not in its resolver, so
 * the server learns a change only from a restart with a re-generated config
 * (`nats-setup`); the rotation takes two calls, each followed by one:
 *
 * 1. `staged`: a new key (`operator.signing.next.nk`) is listed in
 *    `operator.jwt` next to the current one. Nothing is pushed. Restart
 *    nats-server with the config `nats-setup` writes: it trusts both.
 * 2. `done` (called again once the server trusts the new key): every account
 *    JWT (system, log, each tenant's, revoked tenants' tombstones) is signed
 *    by the new key and pushed, the new key replaces the old one on disk and
 *    `operator.jwt` lists it alone. Restart nats-server again with the config
 *    `nats-setup` writes: from then on it refuses what the old key signs.
 *
 * Each push of step 2 is confirmed (`pushAccountJwt`), the system
 * account's first: a server that does not trust the new key yet (not
 * restarted since step 1) applies none, keeps the system account JWT it has
 * (always loaded: pushed back over the refused one) and step 2 fails with
 * `bus.jwt_not_applied`, the new key still staged: restart, then call it
 * again. Cut short during its pushes, call it again: it pushes them all
 * again.
 * Accounts' identity keys, and so their JetStream state, stay; no creds
 * change. Holds the auth dir's lock throughout.
 */
export async function rotateOperatorSigningKey(
  auth: AuthDir,
  connect: ConnectSystemUser,
): Promise<OperatorRotationStep> {
  return withAuthDirLock(auth, async () => {
    requireOnline(auth.operator, 'keys rotate operator (operator.jwt, which lists the operator signing keys)')
    const old = ensureSigningKey(auth.dir, OPERATOR).key
    if (readSigningKeys(auth.dir, OPERATOR).next === undefined) {
      const next = ensureNextSigningKey(auth.dir, OPERATOR)
      await writeOperatorJwt(auth)
      return { step: 'staged', key: next.getPublicKey(), old: old.getPublicKey(), pushed: [] }
    }
    const next = ensureNextSigningKey(auth.dir, OPERATOR)
    const pushed = await pushEveryAccount(auth, connect, next)
    promoteNextSigningKey(auth.dir, OPERATOR)
    markSigningKeysPushed(auth.dir, OPERATOR, [next.getPublicKey()])
    await writeOperatorJwt(auth)
    return { step: 'done', key: next.getPublicKey(), old: old.getPublicKey(), pushed }
  })
}

async function writeOperatorJwt(auth: AuthDir): Promise<void> {
  const jwt = await operatorJwt(auth.operator, auth.system.getPublicKey(), operatorSigningKeys(auth.dir))
  writeFileAtomic(join(auth.dir, 'operator.jwt'), `${jwt}\n`, 0o644)
  auth.operatorJwt = jwt
}

/** Signs every account JWT with `signer` and pushes it (the system and log accounts' also written to the dir). */
async function pushEveryAccount(auth: AuthDir, connect: ConnectSystemUser, signer: KeyPair): Promise<string[]> {
  const jwts: [string, (system: NatsConnection) => Promise<string>][] = [
    // First: a server that does not trust `signer` has the system account loaded, so it keeps the JWT it applies.
    ['SYS', () => writeAccountJwt(auth, SYSTEM_ACCOUNT, signer)],
    ['EVENTPLANE', () => writeAccountJwt(auth, LOG_ACCOUNT, signer)],
  ]
  for (const record of listTenants(auth)) {
    const jwt =
      record.status === 'revoked'
        ? (system: NatsConnection) => tombstoneAccountJwt(auth, record, system, signer)
        : (system: NatsConnection) => recordAccountJwt(auth, record, system, signer)
    jwts.push([record.tenant, jwt])
  }
  const system = await connect()
  try {
    for (const [name, make] of jwts) {
      try {
        await pushAccountJwt(system, await make(system))
      } catch (e) {
        if (!isEventplaneError(e)) throw e
        const message =
          e.code === 'bus.jwt_not_applied'
            ? `operator signing key rotation: ${name}'s account JWT was not applied: nats-server does not trust the new operator signing key yet: run nats-setup again and restart it with the config it writes, then run the rotation again`
            : `operator signing key rotation: ${name}'s account JWT was not pushed: ${e.message}; run it again`
        throw new EventplaneError(e.code, message, { cause: e, details: e.details })
      }
    }
  } finally {
    await system.close()
  }
  return jwts.map(([name]) => name)
}
