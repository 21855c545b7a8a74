import { join } from 'node:path'
import { EventplaneError, isEventplaneError } from '@eventplane/core'
import type { KeyPair } from '@nats-io/nkeys'
import {
  type AuthDir,
  accountSigningKeys,
  operatorSigningKeys,
  writeLogAccountJwt,
  writeSystemAccountJwt,
} from './auth-dir.ts'
import { withAuthDirLock } from './auth-lock.ts'
import { LOG_ACCOUNT, logAccountJwt, operatorJwt, revokedTenantAccountJwt } from './claims.ts'
import { pushAccountJwt } from './claims-push.ts'
import { readRevocations, revocationClaims, writeFileAtomic } from './revocations.ts'
import {
  ensureNextSigningKey,
  ensureSigningKey,
  markSigningKeysPushed,
  promoteNextSigningKey,
  readSigningKeys,
} from './signing-keys.ts'
import type { ConnectSystemUser } from './system-rotate.ts'
import { listTenants, recordAccountJwt } from './tenants.ts'

const OPERATOR = { operator: true } as const

/** Throws `bus.jwt_not_applied` unless the server applies an account JWT that `signer` signed (see step 2). */
async function checkServerTrusts(auth: AuthDir, connect: ConnectSystemUser, signer: KeyPair): Promise<void> {
  const revocations = revocationClaims(readRevocations(auth.dir, LOG_ACCOUNT))
  const system = await connect()
  try {
    await pushAccountJwt(
      system,
      await logAccountJwt(auth.log, signer, revocations, accountSigningKeys(auth.dir, LOG_ACCOUNT)),
    )
  } catch (e) {
    if (!isEventplaneError(e, 'bus.jwt_not_applied')) throw e
    // Its resolver may store the JWT it refused (when it had not loaded the account): the one of now goes over it.
    await pushAccountJwt(system, await writeLogAccountJwt(auth.dir, auth.log, auth.operator))
    throw new EventplaneError(
      'bus.jwt_not_applied',
      'nats-server does not trust the new operator signing key yet: restart it with the config nats-setup writes now, then run the rotation again',
      { cause: e, details: e.details },
    )
  } finally {
    await system.close()
  }
}

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
 * Step 2 first checks that the server trusts the new key: the log account
 * JWT, signed by the new key, is pushed, and `pushAccountJwt` confirms that
 * the server applies it. When it does not, the log account JWT of now is
 * pushed again (over the refused one its resolver may store) and step 2
 * fails with `bus.jwt_not_applied`, the new key still staged: restart, then
 * call it again. Cut short during its pushes, call it again: it pushes them
 * all again.
 * Accounts' identity keys, and so their JetStream state, stay; no creds
 * change. Holds the auth dir's lock throughout.
 */
export async function rotateOperatorSigningKey(
  auth: AuthDir,
  connect: ConnectSystemUser,
): Promise<OperatorRotationStep> {
  return withAuthDirLock(auth, async () => {
    const old = ensureSigningKey(auth.dir, OPERATOR).key
    if (readSigningKeys(auth.dir, OPERATOR).next === undefined) {
      const next = ensureNextSigningKey(auth.dir, OPERATOR)
      await writeOperatorJwt(auth)
      return { step: 'staged', key: next.getPublicKey(), old: old.getPublicKey(), pushed: [] }
    }
    const next = ensureNextSigningKey(auth.dir, OPERATOR)
    await checkServerTrusts(auth, connect, next)
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
  const jwts: [string, () => Promise<string>][] = [
    ['SYS', () => writeSystemAccountJwt(auth.dir, auth.system, auth.operator, signer)],
    ['EVENTPLANE', () => writeLogAccountJwt(auth.dir, auth.log, auth.operator, signer)],
  ]
  for (const record of listTenants(auth)) {
    const jwt =
      record.status === 'revoked'
        ? () => revokedTenantAccountJwt(record.tenant, record.account, signer)
        : () => recordAccountJwt(auth, record, signer)
    jwts.push([record.tenant, jwt])
  }
  const system = await connect()
  try {
    for (const [name, make] of jwts) {
      try {
        await pushAccountJwt(system, await make())
      } catch (e) {
        if (!isEventplaneError(e)) throw e
        const hint =
          e.code === 'bus.jwt_not_applied'
            ? ' (does the server trust the new key? restart it with the config nats-setup writes now)'
            : ''
        throw new EventplaneError(
          e.code,
          `operator signing key rotation: ${name}'s account JWT was not pushed${hint}: ${e.message}; run it again`,
          { cause: e, details: e.details },
        )
      }
    }
  } finally {
    await system.close()
  }
  return jwts.map(([name]) => name)
}
