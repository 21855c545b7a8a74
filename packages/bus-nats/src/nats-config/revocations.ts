import { chmodSync, existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { EventplaneError } from '@eventplane/core'
import { decodeJwt } from '../nkeys.ts'
import type { LOG_ACCOUNT, SYSTEM_ACCOUNT } from './claims.ts'

/**
 * One revoked user key: whose it was, and the time (seconds since the epoch) until which its JWTs are refused
 * (nats-server refuses a user JWT whose `iat` is at or before it): {@link revocationTime}, the later of the clock
 * that revoked it and the `iat` of its last JWT the auth dir issued.
 */
export interface RevokedKey {
  user: string
  at: number
}

/** One key a rotation replaced and that still works until it is revoked (`revokeStagedKeys`). */
export interface StagedKey {
  /** Whose it was. */
  user: string
  /** When it was replaced (seconds since the epoch, the replacing host's clock). */
  since: number
  /**
   * The `iat` of its JWT that its creds file held when it was replaced (the last the auth dir issued for it): what
   * its revocation must cover. Absent in lists written before it was recorded (their revocations are as of now).
   */
  issued?: number
}

/** The accounts whose user keys the auth dir revokes: the log account (service users) and the system account. */
export type RevokingAccount = typeof LOG_ACCOUNT | typeof SYSTEM_ACCOUNT

/**
 * An account's revocations as the auth dir remembers them
 * (`accounts/<account>.revocations.json`: `EVENTPLANE` for the service
 * users, `SYS` for the system user): every user key ever revoked, and the
 * keys a staged rotation replaced but has not revoked yet. Only ever merged
 * into, never rewritten from scratch: the account's JWT is built from it
 * (`accounts/<account>.jwt`, which `nats-setup` preloads into the server
 * config), so a rotation, a re-run of `nats-setup` or a restart cannot bring
 * a revoked key back.
 */
export interface AccountRevocations {
  revoked: Record<string, RevokedKey>
  staged: Record<string, StagedKey>
}

/** `accounts/<account>.revocations.json` of an auth dir. */
export function revocationsFile(dir: string, account: RevokingAccount): string {
  return join(dir, 'accounts', `${account}.revocations.json`)
}

/** Writes `content` to `path` atomically (a temp file renamed over it) with `mode`, also when it existed wider. */
export function writeFileAtomic(path: string, content: string | Uint8Array, mode: number): void {
  const tmp = `${path}.${process.pid}.tmp`
  writeFileSync(tmp, content, { mode })
  chmodSync(tmp, mode)
  renameSync(tmp, path)
}

/** The auth dir's revocations of `account`; none when the file does not exist (an account that never rotated). */
export function readRevocations(dir: string, account: RevokingAccount): AccountRevocations {
  const file = revocationsFile(dir, account)
  if (!existsSync(file)) return { revoked: {}, staged: {} }
  try {
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as Partial<AccountRevocations>
    if (typeof parsed !== 'object' || parsed === null) throw new Error('not an object')
    return { revoked: { ...parsed.revoked }, staged: { ...parsed.staged } }
  } catch (e) {
    throw new EventplaneError('bus.config', `${file} is not a revocation list (${(e as Error).message})`, {
      cause: e,
    })
  }
}

export function writeRevocations(dir: string, account: RevokingAccount, revocations: AccountRevocations): void {
  writeFileAtomic(revocationsFile(dir, account), `${JSON.stringify(revocations, null, 2)}\n`, 0o644)
}

/**
 * `into` with `key` revoked as of `at` (seconds): an earlier entry for the
 * key keeps the later of the two times (a later time refuses more), and a
 * staged entry for it is dropped. Never removes a revocation.
 */
export function mergeRevocation(into: AccountRevocations, key: string, user: string, at: number): AccountRevocations {
  const before = into.revoked[key]
  const staged = { ...into.staged }
  delete staged[key]
  return { revoked: { ...into.revoked, [key]: { user, at: Math.max(at, before?.at ?? 0) } }, staged }
}

/** The `revocations` claim of an account JWT (user key → seconds) for `revocations`; undefined when none. */
export function revocationClaims(revocations: AccountRevocations): Record<string, number> | undefined {
  const entries = Object.entries(revocations.revoked)
  return entries.length === 0 ? undefined : Object.fromEntries(entries.map(([key, r]) => [key, r.at]))
}

/** The `revocations` claim an account JWT carries (none: an empty object). */
export function jwtRevocations(jwt: string): Record<string, number> {
  return (decodeJwt<{ revocations?: Record<string, number> }>(jwt).nats.revocations ?? {}) as Record<string, number>
}

/** The `signing_keys` claim an account JWT carries, as public keys (none: empty). */
export function jwtSigningKeys(jwt: string): string[] {
  const keys = decodeJwt<{ signing_keys?: (string | { key: string })[] }>(jwt).nats.signing_keys ?? []
  return keys.map((k) => (typeof k === 'string' ? k : k.key))
}

/** Whether two key lists hold the same keys (order aside). */
export function sameKeys(a: readonly string[], b: readonly string[]): boolean {
  return JSON.stringify([...a].sort()) === JSON.stringify([...b].sort())
}

/** Whether two revocation claims are the same (order aside). */
export function sameRevocations(a: Record<string, number> | undefined, b: Record<string, number> | undefined): boolean {
  const norm = (r: Record<string, number> | undefined) =>
    JSON.stringify(Object.entries(r ?? {}).sort(([x], [y]) => x.localeCompare(y)))
  return norm(a) === norm(b)
}

/** The seconds since the epoch of now. */
export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000)
}

/**
 * The `at` of a revocation made now of a key whose last JWT the auth dir issued at `issued` (its `iat`; unknown:
 * undefined): the later of now and `issued`. nats-server refuses a user JWT only when the revocation's time is at
 * or after its `iat`, so a revocation as of now made on a clock behind the one that issued the creds (a host whose
 * clock is behind, another host, a clock set back) would let them in. Our user keys are never reused (every
 * rotation makes a new one), so a time past now refuses nothing else.
 */
export function revocationTime(issued: number | undefined): number {
  return Math.max(nowSeconds(), issued ?? 0)
}
