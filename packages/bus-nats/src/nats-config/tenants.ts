import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { EventplaneError, validateTenant } from '@eventplane/core'
import { jetstreamManager } from '@nats-io/jetstream'
import type { KeyPair } from '@nats-io/nkeys'
import type { NatsConnection } from '@nats-io/transport-node'
import { ensureStreamExists } from '../stream.ts'
import { STREAM_NAME } from '../subjects.ts'
import { ensureConsumer } from '../subscription.ts'
import { type AuthDir, tenantCredsFile, writeSecretFile } from './auth-dir.ts'
import type { TenantAdmin } from './tenant-admin.ts'
import { JS_API, isJsApiError } from '../nats-errors.ts'
import {
  DEFAULT_TENANT_ACCOUNT_LIMITS,
  LOG_ACCOUNT,
  type TenantAccountLimits,
  issuedAfter,
  issuedAtOf,
  revokedTenantAccountJwt,
  tenantAccountJwt,
  reissuedCreds,
  userCreds,
} from './claims.ts'
import { heldIssuedAt, pushAccountJwt } from './claims-push.ts'
import { jwtRevocations, jwtSigningKeys, revocationTime, writeFileAtomic } from './revocations.ts'
import {
  accountSigner,
  ensureSigningKey,
  markSigningKeysPushed,
  readSigningKeys,
  signingKeysClaim,
  signingPushedFile,
  signingSeedFile,
  userSigner,
} from './signing-keys.ts'
import { withAuthDirLock } from './auth-lock.ts'
import { identityKey } from './offline-key.ts'
import { credsKeyIssued } from './rotate.ts'
import { seedOrCreate } from './seed-file.ts'
import { type UserPermissions, checkTenantConsumers, tenantPermissions } from './permissions.ts'

/** What the auth dir remembers of a tenant (`tenants/<tenant>.json`). */
export interface TenantRecord {
  tenant: string
  /** The tenant account's public key. */
  account: string
  status: 'active' | 'revoked'
  /** Its durable consumers on the log stream (operator-provisioned, filtered to its subjects). */
  consumers: string[]
  /** What the server bounds for its account (absent in records written before limits existed: the defaults). */
  limits?: TenantAccountLimits
  added_at: string
  revoked_at?: string
  /**
   * User keys of its account revoked by `rotateTenantUser` (key → seconds since the epoch: its JWTs
   * issued until then are refused; the later of the revoking clock's now and the `iat` of the key's last JWT the
   * auth dir issued, so a clock behind the issuing one still covers it). Merged into, never dropped: every push of
   * its account JWT carries them.
   */
  revocations?: Record<string, number>
  /**
   * User keys a rotation replaced, still valid until `revokeStagedTenantKeys` revokes them: a `keepOld`
   * rotation's, or one cut short before it recorded their revocation (also the key in use, when cut short before its
   * new creds were written: `revokeStagedTenantKeys` skips that one). Key → the `iat` of its JWT the creds file held
   * when it was staged: what its revocation must cover, which is made as of that or now, the later. Records written
   * before held the second it was staged, which the revocation's now covers.
   */
  staged?: Record<string, number>
  rotated_at?: string
}

const recordFile = (dir: string, tenant: string): string => join(dir, 'tenants', `${tenant}.json`)
/** `tenants/<tenant>.nk`, the tenant account's identity seed, in the auth dir. */
export const seedPath = (tenant: string): string => join('tenants', `${tenant}.nk`)
const seedFile = (dir: string, tenant: string): string => join(dir, seedPath(tenant))

/** Every tenant the auth dir knows, active and revoked, by name. */
export function listTenants(auth: AuthDir): TenantRecord[] {
  const dir = join(auth.dir, 'tenants')
  if (!existsSync(dir)) return []
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as TenantRecord)
    .sort((a, b) => a.tenant.localeCompare(b.tenant))
}

/** The record of `tenant` when it was revoked (its name stays taken: its events stay in the log under it). */
function revokedRecord(auth: AuthDir, tenant: string): TenantRecord | undefined {
  return listTenants(auth).find((r) => r.tenant === tenant && r.status === 'revoked')
}

/**
 * `bus.unknown_tenant` for a tenant that is not active, saying which it is and what to run: a revoked one comes
 * back only as itself (`--readmit`, see {@link refuseRevokedName}), a name the auth dir never had is looked up in
 * the list (operator walk 2026-12-02: the line said only "not active").
 */
export function tenantNotActive(auth: AuthDir, tenant: string): EventplaneError {
  const revoked = revokedRecord(auth, tenant)
  const why =
    revoked === undefined
      ? "no such tenant: evtctl tenant list shows the auth dir's tenants"
      : `revoked${revoked.revoked_at ? ` at ${revoked.revoked_at}` : ''}: evtctl tenant add ${tenant} --readmit ` +
        'adds the same tenant again, with a new account and creds that read its old events'
  return new EventplaneError('bus.unknown_tenant', `tenant ${tenant} is not active in ${auth.dir} (${why})`, {
    details: { tenant },
  })
}

/** The record of `tenant` when it is active. */
export function activeRecord(auth: AuthDir, tenant: string): TenantRecord | undefined {
  const file = recordFile(auth.dir, validateTenant(tenant))
  if (!existsSync(file)) return undefined
  const record = JSON.parse(readFileSync(file, 'utf8')) as TenantRecord
  return record.status === 'active' ? record : undefined
}

/**
 * Who tells a tenant's last account JWT when the auth dir does not hold it (no `tenants/<tenant>.jwt`: a tenant
 * added before that file existed, or the file lost): the system connection its JWT is pushed through, whose
 * servers are asked for the one they store ({@link heldIssuedAt}), or `'new'` for an account whose key was made
 * now, of which no server can hold a JWT (nothing is asked).
 */
export type LastHeldBy = NatsConnection | 'new'

/**
 * An active tenant's account JWT as its record says (its consumers, limits and revocations) with the auth dir's
 * signing keys for it, signed by `operator` (the operator's signer unless a rotation names another), its
 * activation tokens by `activation` (the log account's signer, {@link logSigner}, unless a rotation of the log
 * account's signing key names the new one). Issued after the last account JWT of the tenant (the auth dir's, or
 * what `held` tells: {@link issuedAfterLast}), and kept as the last before it is returned: every JWT of it that
 * is pushed (`tenant add`, a rotation, `revoke-old`, a signing-key or operator rotation) is made here.
 */
export async function recordAccountJwt(
  auth: AuthDir,
  record: Pick<TenantRecord, 'tenant' | 'account' | 'consumers' | 'limits' | 'revocations'>,
  held: LastHeldBy,
  operator: KeyPair = accountSigner(auth),
  activation: KeyPair = logSigner(auth),
): Promise<string> {
  const jwt = await tenantAccountJwt({
    tenant: record.tenant,
    account: record.account,
    consumers: record.consumers,
    operator,
    log: auth.log,
    activationSigner: activation,
    limits: checkAccountLimits({ ...DEFAULT_TENANT_ACCOUNT_LIMITS, ...record.limits }),
    ...(record.revocations === undefined ? {} : { revocations: record.revocations }),
    signingKeys: tenantSigningKeys(auth, record.tenant),
  })
  return issuedAfterLast(auth, record, jwt, operator, held)
}

/**
 * The JWT that replaces a revoked tenant's (`revokedTenantAccountJwt`: no imports, no connections, every user
 * revoked as of {@link tombstoneRevokedAt}), signed by `operator`, issued after the last account JWT of the tenant
 * ({@link issuedAfterLast}): `tenant revoke`'s, and what an operator rotation re-signs.
 */
export async function tombstoneAccountJwt(
  auth: AuthDir,
  record: Pick<TenantRecord, 'tenant' | 'account' | 'staged' | 'revocations'>,
  held: LastHeldBy,
  operator: KeyPair = accountSigner(auth),
): Promise<string> {
  const at = await tombstoneRevokedAt(auth, record)
  const jwt = await revokedTenantAccountJwt(record.tenant, record.account, operator, at)
  return issuedAfterLast(auth, record, jwt, operator, held)
}

/**
 * The time until which a tenant's tombstone revokes every user of its account (`*`): the latest of now, the `iat`
 * of every user JWT the auth dir issued for it that it still knows (its creds file's, its staged keys'), the times
 * of its revocations (each at or after the `iat` of a JWT it issued) and the `*` of the last JWT it issued for the
 * tenant (a tombstone an operator rotation re-signs after the creds file is gone). nats-server refuses a user JWT
 * only when the revocation's time is at or after its `iat`: creds issued on a clock ahead of the one that revokes
 * the tenant would not be covered by a revocation as of now. Our user keys are never reused, and the tombstone
 * allows no connection anyway (this is defence in depth). An unreadable creds file or last JWT adds nothing.
 */
export async function tombstoneRevokedAt(
  auth: AuthDir,
  record: Pick<TenantRecord, 'tenant' | 'staged' | 'revocations'>,
): Promise<number> {
  const times = [...Object.values(record.staged ?? {}), ...Object.values(record.revocations ?? {})]
  times.push(...(await credsIssuedAt(tenantCredsFile(auth.dir, record.tenant))))
  const last = readLastJwt(auth, record.tenant)
  if (last !== undefined) times.push(...lastTombstoneAt(last))
  return times.reduce((a, b) => (Number.isSafeInteger(b) && b > a ? b : a), revocationTime(undefined))
}

/** The `iat` of the creds file's JWT ({@link credsKeyIssued}), or none when it is missing or unreadable. */
async function credsIssuedAt(file: string): Promise<number[]> {
  return credsKeyIssued(file).then(
    (c) => [c.issued],
    () => [],
  )
}

function lastTombstoneAt(jwt: string): number[] {
  try {
    const all = jwtRevocations(jwt.trim())['*']
    return all === undefined ? [] : [all]
  } catch {
    return []
  }
}

/** `tenants/<tenant>.jwt`: the last account JWT the auth dir issued for the tenant (public, mode 0644). */
export const tenantJwtFile = (dir: string, tenant: string): string => join(dir, 'tenants', `${tenant}.jwt`)

function readLastJwt(auth: AuthDir, tenant: string): string | undefined {
  const file = tenantJwtFile(auth.dir, tenant)
  return existsSync(file) ? readFileSync(file, 'utf8') : undefined
}

/**
 * `jwt` (an account JWT of the tenant that `signer` signed), issued after the last one ({@link issuedAfter}: one
 * second after it on a clock that is not past it), and written to `tenants/<tenant>.jwt` before it is returned, so
 * before it is pushed. The last one is the auth dir's (that file); without it (a tenant added before the file
 * existed, or the file lost), the latest the servers reached through `held` store for the account
 * ({@link heldIssuedAt}; none for a `'new'` account, or when no server stores one: the clock's `iat`). The full
 * resolvers of a cluster keep, of two JWTs of an account, the one issued later: a push made on a clock behind the
 * one before it (or within its second) and missed by one server was replaced by the JWT that server kept once it
 * was back, in the whole cluster, so a rotation's revocation or a revoked tenant's tombstone came undone
 * (tenant-jwt-cluster.test.ts). One server alone applies and stores whatever is pushed.
 */
async function issuedAfterLast(
  auth: AuthDir,
  record: Pick<TenantRecord, 'tenant' | 'account'>,
  jwt: string,
  signer: KeyPair,
  held: LastHeldBy,
): Promise<string> {
  const file = tenantJwtFile(auth.dir, record.tenant)
  const kept = issuedAtOf(readLastJwt(auth, record.tenant))
  const last = kept ?? (held === 'new' ? undefined : await heldIssuedAt(held, record.account))
  const issued = issuedAfter(jwt, last, signer)
  writeFileAtomic(file, `${issued}\n`, 0o644)
  return issued
}

/**
 * The key that signs tenants' activation tokens: the log account's signing key once the server knows it, as for
 * its users ({@link userSigner}), else its identity key. The tokens hold while the log account's JWT lists their
 * signer: a rotation of its signing key re-signs them ({@link rotateSigningKey}).
 */
export function logSigner(auth: AuthDir): KeyPair {
  return userSigner(auth.dir, { account: LOG_ACCOUNT }, auth.log)
}

/** The `signing_keys` of a tenant's account JWT: its current signing key, and a rotation's new one. */
export function tenantSigningKeys(auth: AuthDir, tenant: string): string[] {
  return signingKeysClaim(readSigningKeys(auth.dir, { tenant }))
}

/**
 * The tenant account's key (its seed in the auth dir, `tenants/<tenant>.nk`, or its public key once `keys
 * offline` moved it); `bus.config` when it is bad or gone.
 */
export function tenantKey(auth: AuthDir, tenant: string): KeyPair {
  return identityKey(auth.dir, seedPath(tenant), 'account', `tenant ${tenant} has no account key in the auth dir`)
}

export interface AddTenantOptions {
  /** Its consumer names (`<tenant>_…`); default `<tenant>_tail`, `_proj`, `_ctl`, or what it has. */
  consumers?: readonly string[]
  /** Server-side limits of its account, over what it has (or the defaults). */
  limits?: Partial<TenantAccountLimits>
  /**
   * Adds a revoked tenant again (refused without it: `bus.bad_request`, nothing made). Its events stay in the
   * log under its name, which is append-only, and the account added now reads every one of them: give a name
   * back to the same tenant only, never to another.
   */
  readmit?: boolean
}

export interface AddedTenant {
  record: TenantRecord
  /** The tenant user's creds file (mode 0600): hand it to the tenant, never print it. */
  credsFile: string
  /** false when the tenant was already active (its JWT was pushed again, its consumers checked). */
  created: boolean
}

/**
 * Adds a tenant, live: a new NATS account (JetStream off, no exports) that
 * imports exactly its submit subjects, its consumers and its live log
 * subjects; a user for it, whose creds file is written with mode 0600; its
 * durable consumers on the log stream, filtered to `eventplane.*.<tenant>.>`
 * (the stream is created with defaults when no relay has yet), made or
 * checked before the account JWT is pushed to the server's resolver (no
 * restart, other tenants untouched), so a consumer that exists with another
 * filter fails the add before the account imports it. The account carries
 * server-side limits (connections, largest message, subscriptions:
 * {@link TenantAccountLimits}). Idempotent: an active tenant keeps its
 * account and creds; changed consumer names (or grants this release changed)
 * re-issue its creds for the same user key, and the consumers it lost are
 * dropped.
 */
export async function addTenant(
  auth: AuthDir,
  admin: TenantAdmin,
  tenant: string,
  options: AddTenantOptions = {},
): Promise<AddedTenant> {
  return withAuthDirLock(auth, () => addTenantLocked(auth, admin, tenant, options))
}

async function addTenantLocked(
  auth: AuthDir,
  admin: TenantAdmin,
  tenant: string,
  options: AddTenantOptions,
): Promise<AddedTenant> {
  const existing = activeRecord(auth, tenant)
  if (existing === undefined && options.readmit !== true) refuseRevokedName(auth, tenant)
  const owners = new Map<string, string>()
  for (const r of listTenants(auth))
    if (r.status === 'active' && r.tenant !== tenant) for (const c of r.consumers) owners.set(c, r.tenant)
  const consumers = checkTenantConsumers(tenant, options.consumers ?? existing?.consumers, owners)
  // Every seed of the tenant read before any is written: a bad one fails the add with nothing changed.
  readSigningKeys(auth.dir, { tenant })
  // A new tenant's key (or the one an add cut short left), else the one it has.
  const seed = existing === undefined ? seedOrCreate(seedFile(auth.dir, tenant), 'account') : undefined
  const account = seed?.key ?? tenantKey(auth, tenant)
  const limits = checkAccountLimits({ ...DEFAULT_TENANT_ACCOUNT_LIMITS, ...existing?.limits, ...options.limits })
  // A tenant added before signing keys gets one here, pushed with its JWT before any creds are signed by it.
  ensureSigningKey(auth.dir, { tenant })
  const jwt = await recordAccountJwt(
    auth,
    {
      tenant,
      account: account.getPublicKey(),
      consumers,
      limits,
      ...(existing?.revocations === undefined ? {} : { revocations: existing.revocations }),
    },
    // A key made now: no server holds a JWT of its account. One an add cut short left may have been pushed.
    seed?.created === true ? 'new' : admin.system,
  )
  // The consumers first: one that exists with another filter fails the add before the account imports it.
  const jsm = await jetstreamManager(admin.operator)
  await ensureStreamExists(jsm)
  for (const name of consumers) await ensureConsumer(jsm, { name, filter: { tenant } })
  await pushAccountJwt(admin.system, jwt)
  markSigningKeysPushed(auth.dir, { tenant }, jwtSigningKeys(jwt))
  const signer = userSigner(auth.dir, { tenant }, account)
  const dropped = (existing?.consumers ?? []).filter((c) => !consumers.includes(c))
  await deleteConsumers(admin.operator, dropped)

  const credsFile = tenantCredsFile(auth.dir, tenant)
  const permissions = tenantPermissions(tenant, consumers)
  if (existing === undefined || !existsSync(credsFile))
    writeSecretFile(credsFile, await userCreds(tenant, account, permissions, signer))
  else {
    // Other consumers, or a release that changed a tenant's grants: the same user key with the grants of now.
    const reissued = await reissuedCreds(readFileSync(credsFile), tenant, account, permissions, signer)
    if (reissued !== undefined) writeSecretFile(credsFile, reissued)
  }
  const record: TenantRecord = {
    tenant,
    account: account.getPublicKey(),
    status: 'active',
    consumers,
    limits,
    added_at: existing?.added_at ?? new Date().toISOString(),
    ...(existing?.revocations === undefined ? {} : { revocations: existing.revocations }),
    ...(existing?.staged === undefined ? {} : { staged: existing.staged }),
    ...(existing?.rotated_at === undefined ? {} : { rotated_at: existing.rotated_at }),
  }
  writeRecord(auth, record)
  return { record, credsFile, created: existing === undefined }
}

/**
 * A revoked tenant's name is not added again unless asked (`readmit`): its events stay in the log under that name
 * (append-only, in PostgreSQL and on the stream) and the consumers and imports of an account added under it read
 * every one of them, so a name handed to someone else would hand over the revoked tenant's history (attack review
 * 2026-12-02). Checked before anything is made.
 */
function refuseRevokedName(auth: AuthDir, tenant: string): void {
  const revoked = revokedRecord(auth, tenant)
  if (revoked === undefined) return
  throw new EventplaneError(
    'bus.bad_request',
    `tenant ${tenant} was revoked${revoked.revoked_at ? ` at ${revoked.revoked_at}` : ''}: its events stay in the log ` +
      'under its name and an account added now would read every one of them; add it again only for the same tenant ' +
      '(readmit: evtctl tenant add --readmit)',
    { details: { tenant, ...(revoked.revoked_at ? { revoked_at: revoked.revoked_at } : {}) } },
  )
}

/**
 * Revokes a tenant, live: its account JWT is replaced by one with no imports,
 * no connections allowed and every user revoked, so the server closes its
 * connections at once and refuses its creds from then on; its consumers are
 * deleted and its key and creds removed from the auth dir. Other tenants are
 * untouched. `bus.unknown_tenant` when it is not active.
 */
export async function revokeTenant(auth: AuthDir, admin: TenantAdmin, tenant: string): Promise<TenantRecord> {
  return withAuthDirLock(auth, () => revokeTenantLocked(auth, admin, tenant))
}

async function revokeTenantLocked(auth: AuthDir, admin: TenantAdmin, tenant: string): Promise<TenantRecord> {
  const record = activeRecord(auth, tenant)
  if (record === undefined) throw tenantNotActive(auth, tenant)
  await pushAccountJwt(admin.system, await tombstoneAccountJwt(auth, record, admin.system))
  await deleteConsumers(admin.operator, record.consumers)
  rmSync(tenantCredsFile(auth.dir, tenant), { force: true })
  rmSync(seedFile(auth.dir, tenant), { force: true })
  for (const which of ['current', 'next'] as const)
    rmSync(signingSeedFile(auth.dir, { tenant }, which), { force: true })
  rmSync(signingPushedFile(auth.dir, { tenant }), { force: true })
  const revoked: TenantRecord = { ...record, status: 'revoked', revoked_at: new Date().toISOString() }
  writeRecord(auth, revoked)
  return revoked
}

/** Writes a tenant record atomically (mode 0644: no secret in it). */
export function writeRecord(auth: AuthDir, record: TenantRecord): void {
  writeFileAtomic(recordFile(auth.dir, record.tenant), `${JSON.stringify(record, null, 2)}\n`, 0o644)
}

/**
 * Creds for one more user of an active tenant's account, with `permissions`
 * (none given: everything inside the account, which is still bounded by its
 * imports). Returned, not written: the caller decides where the secret goes.
 */
export async function issueTenantUser(
  auth: AuthDir,
  tenant: string,
  name: string,
  permissions: UserPermissions = {},
): Promise<Uint8Array> {
  if (activeRecord(auth, tenant) === undefined) throw tenantNotActive(auth, tenant)
  const account = tenantKey(auth, tenant)
  return userCreds(name, account, permissions, userSigner(auth.dir, { tenant }, account))
}

export function checkAccountLimits(l: TenantAccountLimits): TenantAccountLimits {
  for (const [name, value] of Object.entries(l))
    if (!Number.isSafeInteger(value) || value < 1)
      throw new EventplaneError('bus.config', `tenant limit ${name} must be a positive integer, got ${value}`)
  return { connections: l.connections, payloadBytes: l.payloadBytes, subscriptions: l.subscriptions }
}

/** JetStream API codes for "already gone" (nats-server errors.json). */

async function deleteConsumers(operator: NatsConnection, names: readonly string[]): Promise<void> {
  if (names.length === 0) return
  const jsm = await jetstreamManager(operator)
  for (const name of names) {
    try {
      await jsm.consumers.delete(STREAM_NAME, name)
    } catch (e) {
      if (!isJsApiError(e, JS_API.consumerNotFound, JS_API.streamNotFound)) throw e
    }
  }
}
