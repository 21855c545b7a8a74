import type { NatsConnection } from '@nats-io/transport-node'
import { type AuthDir, SYSTEM_USER_PERMISSIONS, serviceCredsFile, writeAccountJwt } from './auth-dir.ts'
import { withAuthDirLock } from './auth-lock.ts'
import { SYSTEM_ACCOUNT, SYSTEM_USER, userCreds } from './claims.ts'
import { pushAccountJwt } from './claims-push.ts'
import { jwtSigningKeys, mergeRevocation, readRevocations, revocationTime, writeRevocations } from './revocations.ts'
import { markSigningKeysPushed, userSigner } from './signing-keys.ts'
import {
  type RotateServiceUserOptions,
  type RotatedUser,
  credsKey,
  notPushed,
  replaceCreds,
  stagedOf,
} from './rotate.ts'

/** Opens a connection as the auth dir's `system` user, reading `creds/system.creds` as it is at the call. */
export type ConnectSystemUser = () => Promise<NatsConnection>

/**
 * Rotates the system account's user (`system`, who pushes every account
 * JWT): a new user key with the same grants, its creds written atomically
 * (mode 0600) over `creds/system.creds`, then the replaced key (and any key
 * an earlier staged rotation left valid) revoked in
 * `accounts/SYS.revocations.json` as of now, or as of the `iat` of its JWT
 * when later ({@link revocationTime}), merged with every earlier one, the system
 * account JWT (`accounts/SYS.jwt`, which `nats-setup` preloads) rewritten
 * from it and pushed.
 *
 * The order keeps a working system creds file at every step, a crash
 * included: (1) the old key is recorded as staged, (2) the new creds are
 * written, (3) the revocation is recorded and the JWT written, (4) `connect`
 * opens a connection, which reads the file and so authenticates with the new
 * key (valid: nothing revokes it), and the JWT is pushed through it. The old
 * key is valid on the server until that push, and a push through it would
 * have the server close the pushing connection as it applies the
 * revocation. Cut short after (1) the file still holds the old key, which
 * `revokeStagedSystemKeys` never revokes; after (2) the old key stays staged
 * (`creds revoke-old system` revokes it); after (3) the server has not
 * revoked it yet, and `creds revoke-old system` pushes the recorded JWT (a
 * restart with a re-generated config preloads it).
 *
 * With `keepOld` nothing is pushed and `connect` is not called. A push or a
 * connect that fails throws its code (`bus.unavailable`, `bus.bad_request`,
 * `bus.auth_failed`) after the files are written, naming the command that
 * pushes them. The connection is closed before this returns. Holds the auth
 * dir's lock from reading the old key to the push.
 */
export async function rotateSystemUser(
  auth: AuthDir,
  connect: ConnectSystemUser | undefined,
  options: RotateServiceUserOptions = {},
): Promise<RotatedUser> {
  if (!options.keepOld && connect === undefined) throw new Error('rotateSystemUser: no system connection to push')
  return withAuthDirLock(auth, () => rotateLocked(auth, connect, options.keepOld === true))
}

async function rotateLocked(auth: AuthDir, connect: ConnectSystemUser | undefined, keepOld: boolean) {
  const user = SYSTEM_USER
  const signer = userSigner(auth.dir, { account: SYSTEM_ACCOUNT }, auth.system)
  const creds = await userCreds(user, auth.system, SYSTEM_USER_PERMISSIONS, signer)
  const r = await replaceCreds(auth, SYSTEM_ACCOUNT, user, creds)
  if (keepOld) return { user, credsFile: r.credsFile, key: r.key, revoked: [], staged: r.staged }
  try {
    await revokeAndPush(auth, connect!, r.staged)
  } catch (e) {
    throw notPushed(
      e,
      user,
      auth.dir,
      `evtctl creds revoke-old ${user}`,
      ' (until it is, the server may accept the old key)',
    )
  }
  return { user, credsFile: r.credsFile, key: r.key, revoked: r.staged, staged: [] }
}

/**
 * The second step of a staged rotation of `system`: revokes the keys staged
 * for it as of now (or as of the `iat` recorded with each, when later) and
 * pushes the system account JWT with every revocation the auth dir
 * remembers (also when nothing was staged: this re-pushes a JWT whose push
 * failed), through a connection `connect` opens inside the lock
 * (closed before this returns). Never revokes the key `creds/system.creds`
 * holds (staged by a rotation cut short before it wrote the new creds).
 * Returns the keys revoked now.
 */
export async function revokeStagedSystemKeys(auth: AuthDir, connect: ConnectSystemUser): Promise<string[]> {
  return withAuthDirLock(auth, async () => {
    const current = await credsKey(serviceCredsFile(auth.dir, SYSTEM_USER))
    const staged = stagedOf(readRevocations(auth.dir, SYSTEM_ACCOUNT), SYSTEM_USER).filter((k) => k !== current)
    await revokeAndPush(auth, connect, staged)
    return staged
  })
}

/**
 * Merges `keys` (staged) into the system account's revocations, each as of now or as of the `iat` recorded with it
 * when later, rewrites its JWT and pushes it; the lock held by the caller.
 */
async function revokeAndPush(auth: AuthDir, connect: ConnectSystemUser, keys: readonly string[]): Promise<void> {
  let revocations = readRevocations(auth.dir, SYSTEM_ACCOUNT)
  for (const key of keys)
    revocations = mergeRevocation(revocations, key, SYSTEM_USER, revocationTime(revocations.staged[key]?.issued))
  if (keys.length > 0) writeRevocations(auth.dir, SYSTEM_ACCOUNT, revocations)
  const jwt = await writeAccountJwt(auth, SYSTEM_ACCOUNT)
  auth.systemAccountJwt = jwt
  const system = await connect()
  try {
    await pushAccountJwt(system, jwt)
    markSigningKeysPushed(auth.dir, { account: SYSTEM_ACCOUNT }, jwtSigningKeys(jwt))
  } finally {
    await system.close()
  }
}
