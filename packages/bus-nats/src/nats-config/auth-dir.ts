import { chmodSync, existsSync, mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { EventplaneError } from '@eventplane/core'
import type { KeyPair } from '@nats-io/nkeys'
import { createAccount, createOperator, fromSeed } from '../nkeys.ts'
import {
  LOG_ACCOUNT,
  SYSTEM_ACCOUNT,
  SYSTEM_USER,
  logAccountJwt,
  operatorJwt,
  systemAccountJwt,
  reissuedCreds,
  userCreds,
} from './claims.ts'
import { type AuthDirLockOptions, withAuthDirLock } from './auth-lock.ts'
import { type ServiceUser, type UserPermissions, SERVICE_USERS, servicePermissions } from './permissions.ts'
import {
  accountSigner,
  ensureSigningKey,
  markSigningKeysPushed,
  readSigningKeys,
  signingKeysClaim,
  userSigner,
} from './signing-keys.ts'
import {
  type RevokingAccount,
  jwtRevocations,
  jwtSigningKeys,
  readRevocations,
  revocationClaims,
  sameKeys,
  sameRevocations,
  writeFileAtomic,
} from './revocations.ts'

/**
 * The operator side's NATS authority, kept in one directory (mode 0700):
 *
 * ```
 * operator.nk, operator.jwt             the trust root (nats-server trusts operator.jwt, which lists the
 *                                       operator signing keys)
 * operator.signing.nk                   the operator signing key: signs every account JWT
 * accounts/SYS.{nk,jwt}                 the system account (account JWT pushes)
 * accounts/SYS.revocations.json         its revoked (and staged) user keys, merged into, never rewritten
 * accounts/EVENTPLANE.{nk,jwt}          the log account: stream, relay, gateway, runtime
 * accounts/EVENTPLANE.revocations.json  its revoked (and staged) user keys, merged into, never rewritten
 * accounts/<account>.signing.nk         the account's signing key: signs its users (listed in its JWT)
 * .lock/                                held while a command changes the dir (withAuthDirLock)
 * creds/<user>.creds                    system, operator, relay, gateway, controller
 * tenants/<tenant>.{json,nk,creds}      one record, account key and user creds per tenant
 * tenants/<tenant>.signing.nk           the tenant account's signing key: signs its users
 * <base>.signing.next.nk                a signing-key rotation's new key, until it replaces the current one
 * <base>.signing.pushed                 the signing keys the server is known to have (JSON): a signing key
 *                                       signs only once listed there; until then the identity key signs
 * ```
 *
 * The identity seeds (`operator.nk`, `accounts/*.nk`, `tenants/*.nk`) sign
 * nothing day to day once their signing keys are known to the server, except
 * the operator JWT (`operator.nk`), tenants' activation tokens (the log
 * account's `EVENTPLANE.nk`) and JWTs whose builder has no signing key yet (an
 * auth dir upgraded from before signing keys, until a push or a rotation).
 * A leaked signing key is replaced with `evtctl keys rotate`; a leaked
 * identity seed still needs a new auth dir.
 *
 * Every `.nk` and `.creds` file is a secret, written with mode 0600 and never
 * printed. Whoever holds this directory can add and revoke tenants against any
 * server that trusts `operator.jwt`.
 */
export interface AuthDir {
  dir: string
  operator: KeyPair
  /** The system account's key. */
  system: KeyPair
  /** The log account's key; signs tenants' activation tokens. */
  log: KeyPair
  operatorJwt: string
  systemAccountJwt: string
  logAccountJwt: string
  /** How this process waits for the dir's lock ({@link withAuthDirLock}): a command's notice, a timeout. Not stored. */
  lock?: AuthDirLockOptions
}

/** Who has a creds file in `creds/`: the system account's user and the log account's service users. */
export type AuthDirUser = ServiceUser | typeof SYSTEM_USER

/**
 * What the system account's user may do: push account JWTs (claims requests), read back what a server applies
 * (`claims-confirm.ts`: one server's account details, an account's connections) and read their replies.
 */
export const SYSTEM_USER_PERMISSIONS: UserPermissions = {
  publish: {
    allow: [
      '$SYS.REQ.CLAIMS.>',
      '$SYS.REQ.ACCOUNT.*.CLAIMS.>',
      '$SYS.REQ.SERVER.*.ACCOUNTZ',
      '$SYS.REQ.ACCOUNT.*.CONNZ',
    ],
  },
  subscribe: { allow: ['_INBOX.>'] },
}

/** `creds/<user>.creds` of a service user (or `system`). */
export function serviceCredsFile(dir: string, user: AuthDirUser): string {
  return join(dir, 'creds', `${user}.creds`)
}

/** `tenants/<tenant>.creds`: what the tenant gets to connect with. */
export function tenantCredsFile(dir: string, tenant: string): string {
  return join(dir, 'tenants', `${tenant}.creds`)
}

/** Writes a secret atomically with mode 0600 (also when the file existed with wider permissions). */
export function writeSecretFile(path: string, content: string | Uint8Array): void {
  writeFileAtomic(path, content, 0o600)
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8').trim()
  } catch (e) {
    throw new EventplaneError(
      'bus.config',
      `cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? 'error'}); is this a NATS auth dir made by nats-setup?`,
      { cause: e },
    )
  }
}

/** Reads a key from `<file>` or creates one with `create` and stores it; `created` says which. */
function keyIn(file: string, create: () => KeyPair): { key: KeyPair; created: boolean } {
  if (existsSync(file)) return { key: fromSeed(new TextEncoder().encode(readText(file))), created: false }
  const key = create()
  writeSecretFile(file, `${new TextDecoder().decode(key.getSeed())}\n`)
  return { key, created: true }
}

/** Reads `file` unless `stale` (or `outdated` says its JWT is), else writes `make()` to it (public JWTs: mode 0644). */
async function jwtIn(
  file: string,
  stale: boolean,
  make: () => Promise<string>,
  outdated: (jwt: string) => boolean = () => false,
): Promise<string> {
  if (!stale && existsSync(file)) {
    const jwt = readText(file)
    if (!outdated(jwt)) return jwt
  }
  const jwt = await make()
  writeFileAtomic(file, `${jwt}\n`, 0o644)
  return jwt
}

/**
 * Writes the log account JWT with the auth dir's revocations (`revocations.ts`)
 * to `accounts/EVENTPLANE.jwt` and returns it: what a rotation pushes, and
 * what `nats-setup` preloads into the server config from then on.
 */
export async function writeLogAccountJwt(
  dir: string,
  log: KeyPair,
  operator: KeyPair,
  signer: KeyPair = accountSigner({ dir, operator }),
): Promise<string> {
  return jwtIn(accountJwtFile(dir, LOG_ACCOUNT), true, () =>
    logAccountJwt(
      log,
      signer,
      revocationClaims(readRevocations(dir, LOG_ACCOUNT)),
      accountSigningKeys(dir, LOG_ACCOUNT),
    ),
  )
}

/** {@link writeLogAccountJwt} for the system account (`accounts/SYS.jwt`), with its user revocations. */
export async function writeSystemAccountJwt(
  dir: string,
  system: KeyPair,
  operator: KeyPair,
  signer: KeyPair = accountSigner({ dir, operator }),
): Promise<string> {
  return jwtIn(accountJwtFile(dir, SYSTEM_ACCOUNT), true, () =>
    systemAccountJwt(
      system,
      signer,
      revocationClaims(readRevocations(dir, SYSTEM_ACCOUNT)),
      accountSigningKeys(dir, SYSTEM_ACCOUNT),
    ),
  )
}

/** The `signing_keys` of the operator JWT: its current signing key, and a rotation's new one. */
export function operatorSigningKeys(dir: string): string[] {
  return signingKeysClaim(readSigningKeys(dir, { operator: true }))
}

/** The `signing_keys` of an auth dir account's JWT: its current signing key, and a rotation's new one. */
export function accountSigningKeys(dir: string, account: RevokingAccount): string[] {
  return signingKeysClaim(readSigningKeys(dir, { account }))
}

function accountJwtFile(dir: string, account: RevokingAccount): string {
  return join(dir, 'accounts', `${account}.jwt`)
}

/**
 * Creates what is missing of an auth dir (keys, JWTs, service users' creds)
 * and returns it. Idempotent: existing keys and creds are kept, so running it
 * again never rotates a credential a deployed service uses; the system and
 * log account JWTs keep every revocation the auth dir remembers (rebuilt when
 * one lacks one); a service user's
 * creds whose grants differ from this release's are re-issued for the same
 * user key (an upgrade that changed a tier's grants).
 */
export async function initAuthDir(dir: string, lock: AuthDirLockOptions = {}): Promise<AuthDir> {
  for (const sub of ['', 'accounts', 'creds', 'tenants']) mkdirSync(join(dir, sub), { recursive: true, mode: 0o700 })
  chmodSync(dir, 0o700)
  // Under the lock: a rotation meanwhile could otherwise see its revocation left out of the JWT written here.
  return withAuthDirLock(dir, () => initLocked(dir), lock)
}

async function initLocked(dir: string): Promise<AuthDir> {
  const operator = keyIn(join(dir, 'operator.nk'), createOperator)
  const system = keyIn(join(dir, 'accounts', `${SYSTEM_ACCOUNT}.nk`), createAccount)
  const log = keyIn(join(dir, 'accounts', `${LOG_ACCOUNT}.nk`), createAccount)
  const stale = operator.created || system.created || log.created
  // An auth dir made before signing keys gets them here (an upgrade): listed in the account JWTs from now on.
  for (const account of [SYSTEM_ACCOUNT, LOG_ACCOUNT] as const) {
    ensureSigningKey(dir, { account })
    // A new operator: no server knows these accounts but from the config made now, which preloads their JWTs.
    if (stale) markSigningKeysPushed(dir, { account }, accountSigningKeys(dir, account))
  }
  ensureSigningKey(dir, { operator: true })
  if (stale) markSigningKeysPushed(dir, { operator: true }, operatorSigningKeys(dir))
  const operatorSigning = operatorSigningKeys(dir)
  await jwtIn(
    join(dir, 'operator.jwt'),
    stale,
    () => operatorJwt(operator.key, system.key.getPublicKey(), operatorSigning),
    (jwt) => !sameKeys(jwtSigningKeys(jwt), operatorSigning),
  )
  const signer = accountSigner({ dir, operator: operator.key })
  // Each account JWT with every revocation the auth dir remembers (a re-run never brings a revoked key back)
  // and its signing keys.
  const accountJwt = async (
    account: RevokingAccount,
    make: (r: Record<string, number> | undefined, signing: string[]) => Promise<string>,
  ) => {
    const revocations = revocationClaims(readRevocations(dir, account))
    const signing = accountSigningKeys(dir, account)
    await jwtIn(
      accountJwtFile(dir, account),
      stale,
      () => make(revocations, signing),
      (jwt) => !sameRevocations(jwtRevocations(jwt), revocations) || !sameKeys(jwtSigningKeys(jwt), signing),
    )
  }
  await accountJwt(SYSTEM_ACCOUNT, (r, k) => systemAccountJwt(system.key, signer, r, k))
  await accountJwt(LOG_ACCOUNT, (r, k) => logAccountJwt(log.key, signer, r, k))
  // Signed by the account's signing key once the server was pushed a JWT listing it; until then by its identity
  // key, as before signing keys: an upgrade never writes creds the running server refuses.
  const writeCreds = async (user: AuthDirUser, account: RevokingAccount, permissions: UserPermissions) => {
    const identity = account === SYSTEM_ACCOUNT ? system.key : log.key
    const signer = userSigner(dir, { account }, identity)
    const file = serviceCredsFile(dir, user)
    if (!stale && existsSync(file)) {
      // A release that changed this tier's grants: the same user key, a JWT with the new grants.
      const reissued = await reissuedCreds(readFileSync(file), user, identity, permissions, signer)
      if (reissued !== undefined) writeSecretFile(file, reissued)
      return
    }
    writeSecretFile(file, await userCreds(user, identity, permissions, signer))
  }
  await writeCreds(SYSTEM_USER, SYSTEM_ACCOUNT, SYSTEM_USER_PERMISSIONS)
  const services = servicePermissions()
  for (const user of SERVICE_USERS) await writeCreds(user, LOG_ACCOUNT, services[user])
  return loadAuthDir(dir)
}

/** Reads an auth dir made by {@link initAuthDir}; `bus.config` when it is missing or incomplete. */
export function loadAuthDir(dir: string): AuthDir {
  const key = (file: string): KeyPair => {
    try {
      return fromSeed(new TextEncoder().encode(readText(file)))
    } catch (e) {
      if (e instanceof EventplaneError) throw e
      throw new EventplaneError('bus.config', `${file} does not hold an nkey seed`, { cause: e })
    }
  }
  return {
    dir,
    operator: key(join(dir, 'operator.nk')),
    system: key(join(dir, 'accounts', `${SYSTEM_ACCOUNT}.nk`)),
    log: key(join(dir, 'accounts', `${LOG_ACCOUNT}.nk`)),
    operatorJwt: readText(join(dir, 'operator.jwt')),
    systemAccountJwt: readText(join(dir, 'accounts', `${SYSTEM_ACCOUNT}.jwt`)),
    logAccountJwt: readText(join(dir, 'accounts', `${LOG_ACCOUNT}.jwt`)),
  }
}
