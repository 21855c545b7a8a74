import { existsSync, readFileSync } from 'node:fs'
import { EventplaneError, isEventplaneError } from '@eventplane/core'
import type { KeyPair } from '@nats-io/nkeys'
import type { NatsConnection } from '@nats-io/transport-node'
import {
  type AuthDir,
  SYSTEM_USER_PERMISSIONS,
  serviceCredsFile,
  tenantCredsFile,
  writeAccountJwt,
  writeSecretFile,
} from './auth-dir.ts'
import { withAuthDirLock } from './auth-lock.ts'
import { LOG_ACCOUNT, SYSTEM_ACCOUNT, resignedCreds } from './claims.ts'
import { pushAccountJwt } from './claims-push.ts'
import { type UserPermissions, SERVICE_USERS, servicePermissions, tenantPermissions } from './permissions.ts'
import { jwtSigningKeys } from './revocations.ts'
import {
  type SigningOwner,
  accountSigner,
  ensureNextSigningKey,
  ensureSigningKey,
  markSigningKeysPushed,
  promoteNextSigningKey,
} from './signing-keys.ts'
import type { ConnectSystemUser } from './system-rotate.ts'
import {
  type TenantRecord,
  activeRecord,
  listTenants,
  recordAccountJwt,
  tenantKey,
  tenantNotActive,
} from './tenants.ts'

/** Whose signing key to rotate: the log account, the system account, or an active tenant's account. */
export type SigningTarget = { account: 'log' } | { account: 'system' } | { tenant: string }

export interface RotatedSigningKey {
  /** `EVENTPLANE`, `SYS` or the tenant's name. */
  account: string
  /** The signing key removed from the account's JWT (public): what it signed is refused from now on. */
  removed: string
  /** The new signing key (public). */
  key: string
  /** The creds files re-issued (same user keys, signed by the new key). */
  reissued: string[]
}

/** One account as a rotation sees it: its files, its identity key, its JWT of now, the creds it re-issues. */
interface RotatingAccount {
  name: string
  owner: SigningOwner
  identity: KeyPair
  /** Its account JWT, made once `system` (through which it is pushed) is connected. */
  jwt(system: NatsConnection): Promise<string>
  creds: { file: string; permissions: UserPermissions }[]
  /**
   * The JWTs of the accounts whose imports carry activation tokens it signed (the log account's: every active
   * tenant's), with tokens signed by `signer`: pushed while both keys are listed, before the old key is dropped,
   * which the server would otherwise take as the end of every tenant's imports.
   */
  importers?(signer: KeyPair, system: NatsConnection): Promise<{ owner: SigningOwner; jwt: string }[]>
}

function rotating(auth: AuthDir, target: SigningTarget): RotatingAccount {
  if ('tenant' in target) {
    const record = activeRecord(auth, target.tenant)
    if (record === undefined) throw tenantNotActive(auth, target.tenant)
    const identity = tenantKey(auth, record.tenant)
    const file = tenantCredsFile(auth.dir, record.tenant)
    return {
      name: record.tenant,
      owner: { tenant: record.tenant },
      identity,
      jwt: (system) => recordAccountJwt(auth, { ...record, account: identity.getPublicKey() }, system),
      creds: existsSync(file) ? [{ file, permissions: tenantPermissions(record.tenant, record.consumers) }] : [],
    }
  }
  if (target.account === 'system')
    return {
      name: SYSTEM_ACCOUNT,
      owner: { account: SYSTEM_ACCOUNT },
      identity: auth.system,
      jwt: () => writeAccountJwt(auth, SYSTEM_ACCOUNT),
      creds: [{ file: serviceCredsFile(auth.dir, 'system'), permissions: SYSTEM_USER_PERMISSIONS }],
    }
  const services = servicePermissions()
  return {
    name: LOG_ACCOUNT,
    owner: { account: LOG_ACCOUNT },
    identity: auth.log,
    jwt: () => writeAccountJwt(auth, LOG_ACCOUNT),
    creds: SERVICE_USERS.map((u) => ({ file: serviceCredsFile(auth.dir, u), permissions: services[u] })),
    importers: async (signer, system) => {
      const active = listTenants(auth).filter((r) => r.status === 'active')
      const jwt = (r: TenantRecord) => recordAccountJwt(auth, r, system, accountSigner(auth), signer)
      return Promise.all(active.map(async (r) => ({ owner: { tenant: r.tenant }, jwt: await jwt(r) })))
    },
  }
}

/**
 * Rotates an account's signing key (the key that signs its users; its
 * identity key, which owns its JetStream state and imports, stays). In an
 * order that leaves every creds file of the account accepted by the server
 * at every step, a crash included:
 *
 * 1. a new signing key is written (`<account>.signing.next.nk`) and the
 *    account JWT pushed listing both keys;
 * 2. every creds file of the account (the service users', `system`'s, or the
 *    tenant's) is re-issued for the same user key and the grants of now,
 *    signed by the new key: a process reading its file on reconnect gets it;
 *    for the log account, every active tenant's JWT is pushed with activation
 *    tokens signed by the new key (the server drops an import whose token's
 *    signer the exporter's JWT no longer lists, measured on nats-server 2.9);
 * 3. the new key replaces the old one on disk (the old seed is gone);
 * 4. the JWT is pushed listing the new key only, through a `system`
 *    connection opened now (for the system account: with its re-issued
 *    creds). The server closes the connections of users the old key signed
 *    and refuses them from then on.
 *
 * Cut short before 3, running it again finishes with the same new key; after
 * 3, the server may still accept the old key until the next push of the
 * account's JWT (running it again rotates once more and pushes). Users the
 * old key signed that are not in the auth dir (`issueTenantUser`, or a key a
 * `--keep-old` rotation left valid) are refused after step 4. Holds the auth
 * dir's lock throughout.
 */
export async function rotateSigningKey(
  auth: AuthDir,
  connect: ConnectSystemUser,
  target: SigningTarget,
): Promise<RotatedSigningKey> {
  return withAuthDirLock(auth, async () => {
    const account = rotating(auth, target)
    const old = ensureSigningKey(auth.dir, account.owner).key
    const next = ensureNextSigningKey(auth.dir, account.owner)
    /** Pushes what `make` makes (once `system` is connected: the JWTs of tenants are issued after what it holds). */
    type Made = { owner: SigningOwner; jwt: string }[]
    const push = async (step: string, make: (system: NatsConnection) => Promise<Made>) => {
      try {
        const system = await connect()
        try {
          for (const j of await make(system)) {
            await pushAccountJwt(system, j.jwt)
            markSigningKeysPushed(auth.dir, j.owner, jwtSigningKeys(j.jwt))
          }
        } finally {
          await system.close()
        }
      } catch (e) {
        throw notPushed(e, account.name, step)
      }
    }
    const pushOwn = async (step: string) =>
      push(step, async (system) => [{ owner: account.owner, jwt: await account.jwt(system) }])
    await pushOwn('the new signing key is written')
    for (const c of account.creds)
      writeSecretFile(c.file, await resignedCreds(readFileSync(c.file), account.identity, c.permissions, next))
    const importers = account.importers
    if (importers !== undefined)
      await push("its tenants' activation tokens are re-signed by the new signing key", (system) =>
        importers(next, system),
      )
    promoteNextSigningKey(auth.dir, account.owner)
    await pushOwn('its creds are re-issued with the new signing key')
    return {
      account: account.name,
      removed: old.getPublicKey(),
      key: next.getPublicKey(),
      reissued: account.creds.map((c) => c.file),
    }
  })
}

function notPushed(e: unknown, account: string, step: string): unknown {
  if (!isEventplaneError(e)) return e
  return new EventplaneError(
    e.code,
    `${account}: ${step}, but the account JWT was not pushed: ${e.message}; run the rotation again`,
    { cause: e, details: e.details },
  )
}
