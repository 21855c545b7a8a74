import {
  type Account,
  type Export,
  type Import,
  type OperatorLimits,
  type Permissions,
  encodeAccount,
  encodeActivation,
  encodeOperator,
  encodeUser,
  fmtCreds,
} from '@nats-io/jwt'
import type { KeyPair } from '@nats-io/nkeys'
import { createUser, decodeJwt, fromSeed, parseCreds, reissueJwt } from '../nkeys.ts'
import { LOG_SUBJECTS, STREAM_NAME, SUBMIT_SUBJECTS, logFilter } from '../subjects.ts'
import { type UserPermissions, tenantConsumerSubjects, tenantSubmitSubjects } from './permissions.ts'

/** The account holding the log stream and every service (relay, gateway, runtime, operator). */
export const LOG_ACCOUNT = 'EVENTPLANE'
/** The NATS system account; only its `system` user pushes account JWTs (`$SYS.REQ.CLAIMS.UPDATE`). */
export const SYSTEM_ACCOUNT = 'SYS'
/** The name of the system account's user. */
export const SYSTEM_USER = 'system'

/**
 * A subject the log account exports and nobody serves. Tenants import it as
 * their `$JS.API.INFO`: an account that imports that subject gets no
 * JetStream API import of its own from the server (nats-server only adds the
 * `$JS.API.>` import when `$JS.API.INFO` is not shadowed), so in a tenant
 * account the JetStream API consists of the consumer subjects it imports and
 * nothing else.
 */
export const JETSTREAM_SHADOW_SUBJECT = 'eventplane-api.no-jetstream'

/** Unlimited core limits: Go's JWT reads a missing limit as 0, which would forbid everything. */
const OPEN: OperatorLimits = { subs: -1, data: -1, payload: -1, imports: -1, exports: -1, wildcards: true, conn: -1 }

/** The JetStream and core limits of a tenant account: no JetStream, no exports, no leaf nodes. */
const TENANT_LIMITS: OperatorLimits = { ...OPEN, exports: 0, wildcards: false, leaf: 0 }

/**
 * What nats-server itself bounds for a tenant account (its JWT's limits),
 * before anything reaches the gateway: the gateway's own per-tenant limits
 * (rate, requests and bytes in flight) are in `GatewayLimits`.
 */
export interface TenantAccountLimits {
  /** Connections open at once; one more is refused by the server. Default 64. */
  connections: number
  /**
   * Largest message a tenant client may publish, headers included. The server
   * announces it to the client (nats.js refuses a larger publish locally) and
   * disconnects a client that sends one anyway, so an oversized submit never
   * reaches the gateway. Default 128 KiB (the gateway takes 80 KiB bodies).
   */
  payloadBytes: number
  /** Subscriptions at once over all its connections. Default 1,000. */
  subscriptions: number
}

export const DEFAULT_TENANT_ACCOUNT_LIMITS: Readonly<TenantAccountLimits> = Object.freeze({
  connections: 64,
  payloadBytes: 128 * 1024,
  subscriptions: 1000,
})

/** nats-server user permissions in JWT form. */
export function jwtPermissions(p: UserPermissions): Partial<Permissions> {
  const side = (rule: UserPermissions['publish']) =>
    rule === undefined ? undefined : { allow: rule.allow ?? [], deny: rule.deny ?? [] }
  return {
    ...(p.publish ? { pub: side(p.publish) } : {}),
    ...(p.subscribe ? { sub: side(p.subscribe) } : {}),
    // ttl 0: the server's default response window (2 minutes), as allow_responses: true.
    ...(p.allowResponses ? { resp: { max: 1, ttl: 0 } } : {}),
  }
}

/** The operator JWT (self-signed); `signingKeys` may sign account JWTs besides the operator's identity key. */
export async function operatorJwt(
  operator: KeyPair,
  systemAccount: string,
  signingKeys: readonly string[] = [],
): Promise<string> {
  return encodeOperator('eventplane', operator, {
    system_account: systemAccount,
    ...(signingKeys.length === 0 ? {} : { signing_keys: [...signingKeys] }),
  })
}

/** The `signing_keys` part of an account JWT: the keys that may sign its users (none: only its identity key). */
function signingKeysPart(keys: readonly string[]): Partial<Account> {
  return keys.length === 0 ? {} : { signing_keys: [...keys] }
}

/**
 * The system account's JWT; `revocations` (user key → seconds since the epoch) revoke its users issued until then;
 * `signingKeys` may sign its users besides its identity key.
 */
export async function systemAccountJwt(
  system: KeyPair,
  operator: KeyPair,
  revocations?: Record<string, number>,
  signingKeys: readonly string[] = [],
): Promise<string> {
  const account: Partial<Account> = {
    limits: { ...OPEN, leaf: -1 },
    ...(revocations === undefined ? {} : { revocations }),
    ...signingKeysPart(signingKeys),
  }
  return encodeAccount(SYSTEM_ACCOUNT, system, account, { signer: operator })
}

/**
 * What the log account offers tenants. Every export requires an activation
 * token, which the log account signs for one tenant account and one subject
 * inside the export (its own submit prefix, its own consumers, its own log
 * subjects), so an account can import only what it was given, whatever its
 * own JWT claims.
 */
export function logAccountExports(): Export[] {
  const service = (subject: string, response_type: 'Singleton' | 'Stream' = 'Singleton'): Export => ({
    name: subject,
    subject,
    type: 'service',
    token_req: true,
    response_type,
  })
  return [
    service(SUBMIT_SUBJECTS),
    service(`$JS.API.CONSUMER.INFO.${STREAM_NAME}.*`),
    // A pull answers with many messages (events, heartbeats, status): a streamed response.
    service(`$JS.API.CONSUMER.MSG.NEXT.${STREAM_NAME}.*`, 'Stream'),
    service(`$JS.ACK.${STREAM_NAME}.*.>`),
    service(JETSTREAM_SHADOW_SUBJECT),
    { name: LOG_SUBJECTS, subject: LOG_SUBJECTS, type: 'stream', token_req: true },
  ]
}

/** The log account's JWT; `revocations` and `signingKeys` as for {@link systemAccountJwt}. */
export async function logAccountJwt(
  log: KeyPair,
  operator: KeyPair,
  revocations?: Record<string, number>,
  signingKeys: readonly string[] = [],
): Promise<string> {
  const account: Partial<Account> = {
    limits: { ...OPEN, leaf: -1, mem_storage: -1, disk_storage: -1, streams: -1, consumer: -1 },
    exports: logAccountExports(),
    ...(revocations === undefined ? {} : { revocations }),
    ...signingKeysPart(signingKeys),
  }
  return encodeAccount(LOG_ACCOUNT, log, account, { signer: operator })
}

export interface TenantAccountOptions {
  tenant: string
  /** The tenant account's public key. */
  account: string
  consumers: readonly string[]
  operator: KeyPair
  /** The log account's identity key, the exporter of every import (only its public key, with `activationSigner`). */
  log: KeyPair
  /**
   * Signs the activation tokens: a signing key of the log account (the tokens name it as `issuer_account`;
   * nats-server 2.9 trusts them while the log account's JWT lists that key), or by default `log` itself.
   */
  activationSigner?: KeyPair
  /** Default {@link DEFAULT_TENANT_ACCOUNT_LIMITS}. */
  limits?: TenantAccountLimits
  /** Revoked user keys of the account (key → seconds since the epoch), from its tenant record. */
  revocations?: Record<string, number>
  /** Keys that may sign its users besides its identity key (its signing keys). */
  signingKeys?: readonly string[]
}

/**
 * A tenant's account JWT: JetStream off, no exports, and imports of exactly
 * its submit subjects, its consumers (info, pull, ack) and its own log
 * subjects (live tail), each with an activation token for this account, and
 * the server-side limits of {@link TenantAccountLimits}. The tenant never
 * holds a key that signs any of it.
 */
export async function tenantAccountJwt(o: TenantAccountOptions): Promise<string> {
  const logAccount = o.log.getPublicKey()
  const bySigningKey = o.activationSigner !== undefined && o.activationSigner.getPublicKey() !== logAccount
  const signer = bySigningKey ? { signer: o.activationSigner } : {}
  const grant = async (subject: string, type: 'service' | 'stream', localSubject?: string): Promise<Import> => ({
    name: localSubject ?? subject,
    subject,
    account: logAccount,
    type,
    token: await encodeActivation(o.tenant, o.account, bySigningKey ? logAccount : o.log, type, { subject }, signer),
    ...(localSubject === undefined ? {} : { local_subject: localSubject }),
  })
  const imports: Import[] = [
    await grant(tenantSubmitSubjects(o.tenant), 'service'),
    await grant(logFilter({ tenant: o.tenant }), 'stream'),
    await grant(JETSTREAM_SHADOW_SUBJECT, 'service', '$JS.API.INFO'),
  ]
  for (const name of o.consumers) {
    const s = tenantConsumerSubjects(name)
    imports.push(await grant(s.info, 'service'), await grant(s.next, 'service'), await grant(s.ack, 'service'))
  }
  return encodeAccount(
    o.tenant,
    o.account,
    {
      limits: { ...TENANT_LIMITS, ...natsLimits(o.limits ?? DEFAULT_TENANT_ACCOUNT_LIMITS) },
      imports,
      tags: ['eventplane-tenant'],
      ...(o.revocations === undefined || Object.keys(o.revocations).length === 0 ? {} : { revocations: o.revocations }),
      ...signingKeysPart(o.signingKeys ?? []),
    },
    { signer: o.operator },
  )
}

function natsLimits(l: TenantAccountLimits): Partial<OperatorLimits> {
  return { conn: l.connections, payload: l.payloadBytes, subs: l.subscriptions }
}

/**
 * The JWT that replaces a revoked tenant's: no imports, no connections, and
 * every user issued until `at` (seconds since the epoch; default now) revoked,
 * so the server closes the tenant's live connections and refuses its
 * credentials from then on. The auth dir passes the latest `iat` of the user
 * JWTs it issued for the tenant when later than now (`tombstoneRevokedAt`,
 * tenants.ts): creds issued on a clock ahead.
 */
export async function revokedTenantAccountJwt(
  tenant: string,
  account: string,
  operator: KeyPair,
  at: number = Math.floor(Date.now() / 1000),
): Promise<string> {
  return encodeAccount(
    tenant,
    account,
    { limits: { ...TENANT_LIMITS, conn: 0 }, revocations: { '*': at }, tags: ['eventplane-tenant', 'revoked'] },
    { signer: operator },
  )
}

/**
 * A new user of `account` with `permissions` (none: everything within the account), as a `.creds` file's bytes.
 * `signer`, when it is not the account's identity key, is one of its signing keys: the JWT is issued by it, with
 * `issuer_account` naming the account.
 */
export async function userCreds(
  name: string,
  account: KeyPair,
  permissions: UserPermissions = {},
  signer: KeyPair = account,
): Promise<Uint8Array> {
  const user = createUser()
  return fmtCreds(await signUser(name, user, account, permissions, signer), user)
}

async function signUser(
  name: string,
  user: KeyPair,
  account: KeyPair,
  permissions: UserPermissions,
  signer: KeyPair,
): Promise<string> {
  const bySigningKey = signer.getPublicKey() !== account.getPublicKey()
  return bySigningKey
    ? encodeUser(name, user, account.getPublicKey(), jwtPermissions(permissions), { signer })
    : encodeUser(name, user, account, jwtPermissions(permissions))
}

/**
 * `creds` issued again for the same user key and name by `signer` (the account's identity or a signing key) with
 * `permissions`: what a signing-key rotation writes over each creds file of the account. Issued after the JWT it
 * replaces ({@link issuedAfter}), also on a clock behind the one that issued that.
 */
export async function resignedCreds(
  creds: Uint8Array,
  account: KeyPair,
  permissions: UserPermissions,
  signer: KeyPair,
): Promise<Uint8Array> {
  const { key, uc } = await parseCreds(creds)
  return credsIssuedAgain(key, uc.iat, uc.name, account, permissions, signer)
}

/** The key that issued a creds file's JWT: the account's identity key or one of its signing keys. */
export async function credsIssuer(creds: Uint8Array): Promise<string> {
  return (await parseCreds(creds)).uc.iss
}

/**
 * `creds` re-issued for the same user key when the permissions its JWT grants
 * differ from `permissions` (a release changed a service tier's grants);
 * undefined when they are the same. The user's key is kept, so a process
 * still running on the old file stays who it was; it gains the new grants
 * when it reconnects with the new file. Issued after the JWT it replaces
 * ({@link issuedAfter}), also on a clock behind the one that issued that.
 */
export async function reissuedCreds(
  creds: Uint8Array,
  name: string,
  account: KeyPair,
  permissions: UserPermissions = {},
  signer: KeyPair = account,
): Promise<Uint8Array | undefined> {
  const { key, uc } = await parseCreds(creds)
  if (permissionsKey(uc.nats) === permissionsKey(jwtPermissions(permissions))) return undefined
  return credsIssuedAgain(key, uc.iat, name, account, permissions, signer)
}

/** Creds for the user whose seed is `key`, its JWT issued after `previous` (the `iat` of the one it replaces). */
async function credsIssuedAgain(
  key: string,
  previous: number,
  name: string,
  account: KeyPair,
  permissions: UserPermissions,
  signer: KeyPair,
): Promise<Uint8Array> {
  const user = fromSeed(new TextEncoder().encode(key))
  return fmtCreds(issuedAfter(await signUser(name, user, account, permissions, signer), previous, signer), user)
}

/**
 * `jwt`, re-issued by `signer` (its issuer) one second after `previous` (the `iat` of the JWT it replaces) when
 * it was issued in the same second or before (a clock behind, or set back); else `jwt` itself. `iat` counts
 * seconds, and nats-server orders JWTs by it three times:
 * - it keeps an account JWT pushed to it over the one its config preloads only when the preloaded one was issued
 *   before it (DirJWTStore.saveIfNewer: an equal `iat` lets the preload win at the next start), so a revocation
 *   written within the second of the JWT the config preloads would come undone at the server's next start;
 * - the full resolvers of a cluster compare their stores every `interval` and merge what the others hold by the
 *   same saveIfNewer (DirJWTStore.Merge): a server keeps its own JWT only when it was issued after the other's.
 *   A server that missed a push (down, cut off) comes back with the JWT it had; when the pushed one was issued
 *   at or before it, the servers that applied the push take the old one back, and a revocation comes undone in
 *   the whole cluster (tenant-jwt-cluster.test.ts). One server alone stores whatever is pushed to it
 *   (the `$SYS.REQ.CLAIMS.UPDATE` handler saves without comparing), so only a cluster shows it;
 * - it refuses a revoked user's JWTs issued until the revocation's time, which is the later of now and the `iat`
 *   of the key's creds file (`revocationTime`): creds re-issued for the same user key (new grants, a new signing
 *   key) with an `iat` before the last JWT issued for it would let a revocation miss that JWT.
 */
export function issuedAfter(jwt: string, previous: number | undefined, signer: KeyPair): string {
  if (previous === undefined || decodeJwt(jwt).iat > previous) return jwt
  return reissueJwt(jwt, signer, previous + 1)
}

/** The `iat` of `jwt`, if there is one and it is a JWT whose signature verifies (else undefined: nothing to follow). */
export function issuedAtOf(jwt: string | undefined): number | undefined {
  if (jwt === undefined) return undefined
  try {
    return decodeJwt(jwt.trim()).iat
  } catch {
    return undefined
  }
}

/** A comparable form of a user JWT's grants: each side's allow and deny sorted, and the response window. */
function permissionsKey(p: Partial<Permissions>): string {
  const side = (s: { allow?: string[]; deny?: string[] } | undefined) => ({
    allow: [...(s?.allow ?? [])].sort(),
    deny: [...(s?.deny ?? [])].sort(),
  })
  return JSON.stringify({ pub: side(p.pub), sub: side(p.sub), resp: p.resp ? [p.resp.max, p.resp.ttl] : null })
}
