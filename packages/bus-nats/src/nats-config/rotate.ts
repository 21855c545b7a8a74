import { existsSync, readFileSync } from 'node:fs'
import { EventplaneError, isEventplaneError } from '@eventplane/core'
import { parseCreds } from '../nkeys.ts'
import type { NatsConnection } from '@nats-io/transport-node'
import { type AuthDir, type AuthDirUser, serviceCredsFile, writeAccountJwt, writeSecretFile } from './auth-dir.ts'
import { LOG_ACCOUNT, SYSTEM_ACCOUNT, SYSTEM_USER, userCreds } from './claims.ts'
import { pushAccountJwt } from './claims-push.ts'
import { withAuthDirLock } from './auth-lock.ts'
import { type ServiceUser, SERVICE_USERS, servicePermissions } from './permissions.ts'
import {
  type AccountRevocations,
  type RevokingAccount,
  mergeRevocation,
  nowSeconds,
  jwtSigningKeys,
  revocationTime,
  readRevocations,
  writeRevocations,
} from './revocations.ts'
import { markSigningKeysPushed, userSigner } from './signing-keys.ts'

/** What a rotation did: where the new creds are, the key they hold, and the keys revoked or staged. */
export interface RotatedUser {
  user: string
  credsFile: string
  /** The new user key (public). */
  key: string
  /** Keys refused from now on (the replaced key, and any earlier staged one). */
  revoked: string[]
  /** Keys replaced but still valid until revoked (`keepOld`). */
  staged: string[]
}

export interface RotateServiceUserOptions {
  /**
   * Staged (zero-downtime) rotation: write the new creds and keep the old key
   * valid until {@link revokeStagedKeys}, for deployments that copy creds to
   * several hosts. Default false: the old key is revoked at once (a leak).
   */
  keepOld?: boolean
}

/** `user` as a service user of the log account; `bus.unknown_user` otherwise. */
export function checkServiceUser(user: string): ServiceUser {
  if ((SERVICE_USERS as readonly string[]).includes(user)) return user as ServiceUser
  throw new EventplaneError('bus.unknown_user', `${user} is not a service user (one of ${SERVICE_USERS.join(', ')})`, {
    details: { user },
  })
}

/** The public key of the user whose creds `creds` are (a `.creds` file's bytes). */
export async function credsUserKey(creds: Uint8Array): Promise<string> {
  return (await parseCreds(creds)).uc.sub
}

/** `user` as a user with a creds file in the auth dir (a service user or `system`); `bus.unknown_user` otherwise. */
export function checkAuthDirUser(user: string): AuthDirUser {
  const users: readonly string[] = [...SERVICE_USERS, SYSTEM_USER]
  if (users.includes(user)) return user as AuthDirUser
  // A tenant's name is the likely slip (the operator walk's): its user is rotated by the tenant command.
  const tenants = "a tenant's user: evtctl tenant rotate <tenant>"
  throw new EventplaneError(
    'bus.unknown_user',
    `${user} is not an auth dir user (one of ${users.join(', ')}; ${tenants})`,
    {
      details: { user },
    },
  )
}

/** The public key of the user whose creds `file` holds; `bus.config` when it cannot be read. */
export async function credsKey(file: string): Promise<string> {
  return (await credsKeyIssued(file)).key
}

/**
 * The public key of the user whose creds `file` holds and the `iat` of its JWT (what a revocation of the key must
 * cover); `bus.config` when it cannot be read.
 */
export async function credsKeyIssued(file: string): Promise<{ key: string; issued: number }> {
  if (!existsSync(file)) throw new EventplaneError('bus.config', `no creds file ${file}: run nats-setup first`)
  try {
    const { uc } = await parseCreds(readFileSync(file))
    return { key: uc.sub, issued: uc.iat }
  } catch (e) {
    throw new EventplaneError('bus.config', `${file} is not a creds file`, { cause: e })
  }
}

/**
 * Rotates a service user of the log account (relay, gateway, controller,
 * operator): a new user key with the same grants, its creds written
 * atomically (mode 0600) over `creds/<user>.creds`, then the replaced key
 * (and any key an earlier staged rotation left valid) revoked in the auth
 * dir's revocation list as of now, or as of its JWT's `iat` when that is
 * later ({@link revocationTime}: a clock behind the one that issued it),
 * merged with every earlier one, the log account JWT rewritten from it and
 * pushed through `system`. The server
 * closes the old key's live connections and refuses it from then on; a
 * service reading its creds file on each reconnect (`natsAuth`) comes back
 * with the new key. The old key is recorded as staged first, then the new
 * creds are written, then the revocation recorded and pushed: at no point
 * does the file hold a revoked key, and a rotation cut short leaves no
 * replaced key unlisted.
 *
 * With `keepOld` nothing is pushed: the old key stays valid, recorded as
 * staged, until {@link revokeStagedKeys}. `bus.unknown_user` for another
 * name (nothing written); `bus.unavailable` or `bus.bad_request` when the
 * push fails, after the files are written (push again with
 * {@link revokeStagedKeys}: the recorded JWT goes as it is). Holds the auth
 * dir's lock from reading the old key to the push ({@link withAuthDirLock}).
 */
export async function rotateServiceUser(
  auth: AuthDir,
  system: NatsConnection | undefined,
  name: string,
  options: RotateServiceUserOptions = {},
): Promise<RotatedUser> {
  const user = checkServiceUser(name)
  if (!options.keepOld && system === undefined) throw new Error('rotateServiceUser: no system connection to push')
  return withAuthDirLock(auth, () => rotateLocked(auth, system, user, options.keepOld === true))
}

async function rotateLocked(
  auth: AuthDir,
  system: NatsConnection | undefined,
  user: ServiceUser,
  keepOld: boolean,
): Promise<RotatedUser> {
  const signer = userSigner(auth.dir, { account: LOG_ACCOUNT }, auth.log)
  const r = await replaceCreds(
    auth,
    LOG_ACCOUNT,
    user,
    await userCreds(user, auth.log, servicePermissions()[user], signer),
  )
  if (keepOld) return { user, credsFile: r.credsFile, key: r.key, revoked: [], staged: r.staged }
  try {
    await revokeAndPush(
      auth,
      system!,
      r.staged.map((key) => ({ key, user })),
    )
  } catch (e) {
    throw notPushed(e, user, auth.dir, 'evtctl creds revoke-old')
  }
  return { user, credsFile: r.credsFile, key: r.key, revoked: r.staged, staged: [] }
}

/** What {@link replaceCreds} wrote: the new creds' file and key, and the keys staged for the user. */
export interface ReplacedCreds {
  credsFile: string
  key: string
  /** The replaced key first, then any key an earlier staged rotation left valid: what a rotation revokes now. */
  staged: string[]
}

/**
 * The writes a rotation of an auth dir user starts with, in the order that
 * keeps a creds file the server accepts and no replaced key unlisted: the key
 * `creds/<user>.creds` holds listed as staged in `account`'s revocations
 * (with its JWT's `iat`, which its revocation must cover), then `creds`
 * written over it (mode 0600). Cut short in between, the key in
 * use is staged, which revoke-old skips; cut short after, the replaced key
 * stays listed until revoke-old revokes it. The auth dir's lock held by the
 * caller.
 */
export async function replaceCreds(
  auth: AuthDir,
  account: RevokingAccount,
  user: AuthDirUser,
  creds: Uint8Array,
): Promise<ReplacedCreds> {
  const credsFile = serviceCredsFile(auth.dir, user)
  const { key: oldKey, issued } = await credsKeyIssued(credsFile)
  const before = readRevocations(auth.dir, account)
  const after = {
    revoked: before.revoked,
    staged: { ...before.staged, [oldKey]: { user, since: nowSeconds(), issued } },
  }
  writeRevocations(auth.dir, account, after)
  writeSecretFile(credsFile, creds)
  const staged = [oldKey, ...stagedOf(after, user).filter((k) => k !== oldKey)]
  return { credsFile, key: await credsUserKey(creds), staged }
}

/** A push that failed after a rotation wrote its files, saying so and naming `command`, which pushes them. */
export function notPushed(e: unknown, user: string, dir: string, command: string, note = ''): unknown {
  if (!isEventplaneError(e)) return e
  return new EventplaneError(
    e.code,
    `${user}'s new creds are written and its old key's revocation recorded in ${dir}, but not pushed${note}: ${e.message}; push it with: ${command}`,
    { cause: e, details: e.details },
  )
}

/**
 * The second step of a staged rotation: revokes the keys staged for `user`
 * (every service user's when undefined) as of now, or as of the `iat`
 * recorded with each when later ({@link revocationTime}), and pushes the log
 * account JWT with every revocation the auth dir remembers (also when
 * nothing was staged: this re-pushes a JWT whose push failed). Never revokes
 * a key its user's creds file holds (staged by a rotation cut short before
 * it wrote the new creds). Returns the keys revoked now.
 */
export async function revokeStagedKeys(auth: AuthDir, system: NatsConnection, name?: string): Promise<string[]> {
  const user = name === undefined ? undefined : checkServiceUser(name)
  return withAuthDirLock(auth, async () => {
    const inUse = async (key: string, owner: string) =>
      key === (await credsKey(serviceCredsFile(auth.dir, checkServiceUser(owner))))
    const staged = []
    for (const [key, s] of Object.entries(readRevocations(auth.dir, LOG_ACCOUNT).staged))
      if ((user === undefined || s.user === user) && !(await inUse(key, s.user))) staged.push({ key, user: s.user })
    await revokeAndPush(auth, system, staged)
    return staged.map((s) => s.key)
  })
}

/**
 * A log account user key to revoke: whose it is, and the `iat` of the last JWT issued for it that the caller knows
 * (its creds'), which the revocation must cover; undefined when unknown (the `iat` recorded with the key staged, if
 * any, else now).
 */
export interface LogUserKey {
  key: string
  user: string
  issued?: number
}

/**
 * Merges `keys` into the auth dir's revocation list, each as of now or as of the latest `iat` known for it when
 * later (its `issued`, the one recorded with it staged: {@link revocationTime}), rewrites the log account JWT from the
 * whole list and pushes it through `system`: every key revoked before stays revoked.
 */
export async function revokeLogUserKeys(
  auth: AuthDir,
  system: NatsConnection,
  keys: readonly LogUserKey[],
): Promise<void> {
  await withAuthDirLock(auth, () => revokeAndPush(auth, system, keys))
}

/** {@link revokeLogUserKeys}, the auth dir's lock held by the caller. */
async function revokeAndPush(auth: AuthDir, system: NatsConnection, keys: readonly LogUserKey[]): Promise<void> {
  let revocations = readRevocations(auth.dir, LOG_ACCOUNT)
  for (const { key, user, issued } of keys) {
    const known = Math.max(issued ?? 0, revocations.staged[key]?.issued ?? 0)
    revocations = mergeRevocation(revocations, key, user, revocationTime(known))
  }
  if (keys.length > 0) writeRevocations(auth.dir, LOG_ACCOUNT, revocations)
  const jwt = await writeAccountJwt(auth, LOG_ACCOUNT)
  auth.logAccountJwt = jwt
  await pushAccountJwt(system, jwt)
  markSigningKeysPushed(auth.dir, { account: LOG_ACCOUNT }, jwtSigningKeys(jwt))
}

/** The keys staged (replaced, still valid) for `user`. */
export function stagedOf(revocations: AccountRevocations, user: string): string[] {
  return Object.entries(revocations.staged)
    .filter(([, s]) => s.user === user)
    .map(([key]) => key)
}

/** One user of the auth dir as `listAuthDirUsers` shows it. */
export interface AuthDirUserKeys {
  user: AuthDirUser
  credsFile: string
  /** The key its creds file holds. */
  key: string
  /** Keys a staged rotation replaced, still valid until `creds revoke-old`. */
  staged: string[]
  /** How many of its keys were revoked. */
  revoked: number
}

/** The auth dir's service users, then its system user, each with its current key and its staged and revoked keys. */
export async function listAuthDirUsers(auth: AuthDir): Promise<AuthDirUserKeys[]> {
  const out = []
  for (const user of [...SERVICE_USERS, SYSTEM_USER] as const) {
    const revocations = readRevocations(auth.dir, user === SYSTEM_USER ? SYSTEM_ACCOUNT : LOG_ACCOUNT)
    const credsFile = serviceCredsFile(auth.dir, user)
    const revoked = Object.values(revocations.revoked).filter((r) => r.user === user).length
    out.push({ user, credsFile, key: await credsKey(credsFile), staged: stagedOf(revocations, user), revoked })
  }
  return out
}
