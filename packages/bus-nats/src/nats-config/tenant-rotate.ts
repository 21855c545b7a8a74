import { existsSync } from 'node:fs'
import { EventplaneError, isEventplaneError } from '@eventplane/core'
import type { KeyPair } from '@nats-io/nkeys'
import { type AuthDir, tenantCredsFile, writeSecretFile } from './auth-dir.ts'
import { withAuthDirLock } from './auth-lock.ts'
import { userCreds } from './claims.ts'
import { pushAccountJwt } from './claims-push.ts'
import { tenantPermissions } from './permissions.ts'
import { jwtSigningKeys, revocationTime } from './revocations.ts'
import { markSigningKeysPushed, userSigner } from './signing-keys.ts'
import { credsKeyIssued, credsUserKey } from './rotate.ts'
import type { TenantAdmin } from './tenant-admin.ts'
import {
  type TenantRecord,
  activeRecord,
  recordAccountJwt,
  tenantKey,
  tenantNotActive,
  writeRecord,
} from './tenants.ts'

export interface RotatedTenant {
  record: TenantRecord
  /** The new creds file (mode 0600): hand it to the tenant, never print it. */
  credsFile: string
  /** The new user key (public). */
  key: string
  /** Keys refused from now on: the replaced one, and any an earlier staged rotation left valid. */
  revoked: string[]
  /** Keys replaced but still valid until {@link revokeStagedTenantKeys} (`keepOld`). */
  staged: string[]
}

export interface RotateTenantOptions {
  /**
   * Staged rotation: write the new creds and keep the old key valid until
   * {@link revokeStagedTenantKeys}, for a tenant that needs time to deploy
   * them. Default false: the old key is revoked at once (a leak).
   */
  keepOld?: boolean
}

function activeOrThrow(auth: AuthDir, tenant: string): TenantRecord {
  const record = activeRecord(auth, tenant)
  if (record === undefined) throw tenantNotActive(auth, tenant)
  return record
}

/**
 * Rotates an active tenant's user, live: a new user key with the same
 * grants, its creds written atomically (mode 0600) over
 * `tenants/<tenant>.creds`, the old key (and any key a staged rotation left
 * valid) added to the revocations its record keeps (merged with every
 * earlier one), each as of now or as of the `iat` of its last JWT the auth
 * dir issued when later ({@link revocationTime}: a clock behind the one that
 * issued it), and its account JWT pushed with them: the server closes the
 * old key's connections and refuses it from then on. With `keepOld` the old
 * key is recorded as staged, with its JWT's `iat`, and nothing is pushed.
 *
 * The writes go in the order `replaceCreds` (rotate.ts) keeps for service users:
 * the old key staged in the record, then the new creds, then (at once) the
 * revocation recorded and pushed. The file never holds a key the server
 * refuses, and a rotation cut short leaves no replaced key unlisted: cut
 * short before the creds are written, the key in use is staged, which
 * {@link revokeStagedTenantKeys} skips; after, the replaced key stays staged
 * until `tenant revoke-old` or the next rotation revokes it.
 *
 * Its account, consumers and limits stay; other tenants are not touched
 * (their JWTs are not pushed). `bus.unknown_tenant` when it is not active, before anything is
 * written. Holds the auth dir's lock (`withAuthDirLock`): a concurrent
 * `tenant add` cannot write back a record without the new revocation.
 */
export async function rotateTenantUser(
  auth: AuthDir,
  admin: TenantAdmin,
  tenant: string,
  options: RotateTenantOptions = {},
): Promise<RotatedTenant> {
  return withAuthDirLock(auth, async () => {
    const existing = activeOrThrow(auth, tenant)
    const account = tenantKey(auth, tenant)
    const credsFile = tenantCredsFile(auth.dir, tenant)
    const old = existsSync(credsFile) ? await credsKeyIssued(credsFile) : undefined
    const signer = userSigner(auth.dir, { tenant }, account)
    const creds = await userCreds(tenant, account, tenantPermissions(tenant, existing.consumers), signer)
    const key = await credsUserKey(creds)
    const staged = { ...existing.staged, ...(old === undefined ? {} : { [old.key]: old.issued }) }
    const stagedRecord: TenantRecord = { ...existing, staged, rotated_at: new Date().toISOString() }
    writeRecord(auth, stagedRecord)
    writeSecretFile(credsFile, creds)
    // The replaced key first, then any an earlier staged rotation left valid.
    const replaced = [...(old === undefined ? [] : [old.key]), ...Object.keys(staged).filter((k) => k !== old?.key)]
    if (options.keepOld) return { record: stagedRecord, credsFile, key, revoked: [], staged: replaced }
    const record = withRevoked(stagedRecord, staged)
    writeRecord(auth, record)
    await pushTenant(auth, admin, record, account, "its new creds are written and its old key's")
    return { record, credsFile, key, revoked: replaced, staged: [] }
  })
}

/**
 * The second step of a staged tenant rotation: revokes the keys staged in
 * its record as of now, or as of the `iat` recorded with each when later
 * ({@link revocationTime}), and pushes its account JWT with every
 * revocation the record keeps (also when none was staged). Never revokes
 * the key `tenants/<tenant>.creds` holds (staged by a rotation cut short
 * before it wrote the new creds): it stays staged. Returns the keys revoked
 * now.
 */
export async function revokeStagedTenantKeys(auth: AuthDir, admin: TenantAdmin, tenant: string): Promise<string[]> {
  return withAuthDirLock(auth, async () => {
    const existing = activeOrThrow(auth, tenant)
    const credsFile = tenantCredsFile(auth.dir, tenant)
    const inUse = existsSync(credsFile) ? (await credsKeyIssued(credsFile)).key : undefined
    const revoking = Object.fromEntries(Object.entries(existing.staged ?? {}).filter(([k]) => k !== inUse))
    const record = withRevoked(existing, revoking)
    writeRecord(auth, record)
    await pushTenant(auth, admin, record, tenantKey(auth, tenant), "its staged keys'")
    return Object.keys(revoking)
  })
}

/**
 * `record` with `keys` (key → the `iat` its revocation must cover, as its `staged` keeps them) revoked, each as of
 * {@link revocationTime} (a key revoked earlier keeps the later time), and no longer staged.
 */
function withRevoked(record: TenantRecord, keys: Record<string, number>): TenantRecord {
  const revocations = { ...record.revocations }
  for (const [k, issued] of Object.entries(keys)) revocations[k] = Math.max(revocationTime(issued), revocations[k] ?? 0)
  const { staged: before, ...rest } = record
  const staged = Object.fromEntries(Object.entries(before ?? {}).filter(([k]) => !Object.hasOwn(keys, k)))
  return { ...rest, revocations, ...(Object.keys(staged).length === 0 ? {} : { staged }) }
}

/** Pushes the tenant's account JWT (its consumers, limits and revocations); a failure says what was recorded. */
async function pushTenant(
  auth: AuthDir,
  admin: TenantAdmin,
  record: TenantRecord,
  account: KeyPair,
  what: string,
): Promise<void> {
  const jwt = await recordAccountJwt(auth, { ...record, account: account.getPublicKey() }, admin.system)
  try {
    await pushAccountJwt(admin.system, jwt)
    markSigningKeysPushed(auth.dir, { tenant: record.tenant }, jwtSigningKeys(jwt))
  } catch (e) {
    if (!isEventplaneError(e)) throw e
    throw new EventplaneError(
      e.code,
      `tenant ${record.tenant}: ${what} revocation recorded, but not pushed: ${e.message}; push it with: evtctl tenant add ${record.tenant}`,
      { cause: e, details: e.details },
    )
  }
}
