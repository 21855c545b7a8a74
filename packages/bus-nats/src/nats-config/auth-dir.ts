import { chmodSync, existsSync, mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { EventplaneError } from '@eventplane/core'
import type { KeyPair } from '@nats-io/nkeys'
import {
  LOG_ACCOUNT,
  SYSTEM_ACCOUNT,
  SYSTEM_USER,
  logAccountJwt,
  operatorJwt,
  systemAccountJwt,
  issuedAfter,
  issuedAtOf,
  reissuedCreds,
  userCreds,
} from './claims.ts'
import { type AuthDirLockOptions, withAuthDirLock } from './auth-lock.ts'
import { identityKey, identityKeyIfKnown, isOffline, requireOnline } from './offline-key.ts'
import { seedFileError, seedOrCreate } from './seed-file.ts'
import { type ServiceUser, type UserPermissions, SERVICE_USERS, servicePermissions } from './permissions.ts'
import {
  type SigningOwner,
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
 * identity-seeds.offline.json           the identity seeds `keys offline` moved off the host: public keys, where
 * ```
 *
 * The identity seeds (`operator.nk`, `accounts/*.nk`, `tenants/*.nk`) sign
 * nothing day to day once their signing keys are known to the server (users
 * and tenants' activation tokens are signed by the accounts' signing keys,
 * account JWTs by the operator's), except the operator JWT (`operator.nk`)
 * and JWTs whose builder has no signing key yet (an auth dir upgraded from
 * before signing keys, until a push or a rotation); `evtctl keys offline`
 * moves them off the host (`identity-move.ts`). A leaked signing key is
 * replaced with `evtctl keys rotate`; a leaked identity seed still needs a new
 * auth dir.
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

/**
 * `outdated(jwt)`; `bus.config` naming `file` when its JWT cannot be read (not a JWT, or its signature does not
 * verify), never the JWT: what the auth dir would preload or sign with is not guessed at.
 */
function outdatedOrBad(file: string, jwt: string, outdated: (jwt: string) => boolean): boolean {
  try {
    return outdated(jwt)
  } catch {
    throw new EventplaneError(
      'bus.config',
      `${file} does not hold a JWT whose signature verifies: restore it from a backup of the auth dir, or remove it and run nats-setup again (it is written anew from the auth dir's keys)`,
      { details: { file } },
    )
  }
}

/**
 * Reads `file` unless `stale` (or `outdated` says its JWT is), else writes `make()` to it (public JWTs: mode 0644).
 * With `signer` (an account JWT, which `nats-setup` preloads), the JWT written is issued after the one it replaces
 * ({@link issuedAfter}).
 */
async function jwtIn(
  file: string,
  stale: boolean,
  make: () => Promise<string>,
  outdated: (jwt: string) => boolean = () => false,
  signer?: KeyPair,
): Promise<string> {
  const previous = existsSync(file) ? readText(file) : undefined
  if (!stale && previous !== undefined && !outdatedOrBad(file, previous, outdated)) return previous
  const made = await make()
  const jwt = signer === undefined ? made : issuedAfter(made, issuedAtOf(previous), signer)
  writeFileAtomic(file, `${jwt}\n`, 0o644)
  return jwt
}

/**
 * The system or log account's JWT of now: its identity key as subject, the auth dir's revocations of its users
 * (`revocations.ts`), its signing keys, and its exports (the log account's), signed by `signer`.
 */
function accountJwt(dir: string, account: RevokingAccount, identity: KeyPair, signer: KeyPair): Promise<string> {
  const make = account === LOG_ACCOUNT ? logAccountJwt : systemAccountJwt
  return make(identity, signer, revocationClaims(readRevocations(dir, account)), accountSigningKeys(dir, account))
}

/**
 * Writes the system or log account's JWT ({@link accountJwt}, signed by the operator's signer unless a rotation
 * names another) to `accounts/<account>.jwt` and returns it: what a rotation pushes, and what `nats-setup`
 * preloads into the server config from then on.
 */
export async function writeAccountJwt(
  auth: Pick<AuthDir, 'dir' | 'operator' | 'system' | 'log'>,
  account: RevokingAccount,
  signer: KeyPair = accountSigner(auth),
): Promise<string> {
  const identity = account === LOG_ACCOUNT ? auth.log : auth.system
  return jwtIn(
    accountJwtFile(auth.dir, account),
    true,
    () => accountJwt(auth.dir, account, identity, signer),
    undefined,
    signer,
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
  const { operator, system, log } = identitySeeds(dir)
  const stale = operator.created || system.created || log.created
  // operator.jwt re-signed (its signing keys changed: an operator signing key rotation) needs operator.nk.
  if (
    isOffline(operator.key) &&
    !sameKeys(jwtSigningKeys(readText(join(dir, 'operator.jwt'))), operatorSigningKeys(dir))
  )
    requireOnline(
      operator.key,
      'nats-setup (operator.jwt is re-signed once an operator signing key rotation changed it)',
    )
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
  for (const [account, identity] of [
    [SYSTEM_ACCOUNT, system.key],
    [LOG_ACCOUNT, log.key],
  ] as const) {
    const revocations = revocationClaims(readRevocations(dir, account))
    const signing = accountSigningKeys(dir, account)
    await jwtIn(
      accountJwtFile(dir, account),
      stale,
      () => accountJwt(dir, account, identity, signer),
      (jwt) => !sameRevocations(jwtRevocations(jwt), revocations) || !sameKeys(jwtSigningKeys(jwt), signing),
      signer,
    )
  }
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

type Seed = { key: KeyPair; created: boolean }
type Identity = 'operator' | 'system' | 'log'
const IDENTITIES: readonly Identity[] = ['operator', 'system', 'log']
const ROLES = { operator: 'operator', system: 'account', log: 'account' } as const
const SIGNING_OWNERS: readonly SigningOwner[] = [
  { operator: true },
  { account: SYSTEM_ACCOUNT },
  { account: LOG_ACCOUNT },
]

/** The identity seeds of an auth dir, by their path in it: the operator's, the system and the log account's. */
export const IDENTITY_SEEDS: Readonly<Record<Identity, string>> = {
  operator: 'operator.nk',
  system: join('accounts', `${SYSTEM_ACCOUNT}.nk`),
  log: join('accounts', `${LOG_ACCOUNT}.nk`),
}

/**
 * The auth dir's identity keys, each read ({@link readSeedFile}) before any is made: a bad one fails before
 * anything is written. A new auth dir (no `operator.jwt` yet, or a run cut short before it) gets the missing
 * ones; in one that has `operator.jwt` a missing identity seed is `bus.config`, never replaced by a new key,
 * which would be another operator or account (its JetStream state and every creds file lost).
 */
function identitySeeds(dir: string): Record<Identity, Seed> {
  const found = IDENTITIES.map(
    (which) => [which, identityKeyIfKnown(dir, IDENTITY_SEEDS[which], ROLES[which])] as const,
  )
  // The signing keys' seeds too: a bad one fails here, before any seed is made.
  for (const owner of SIGNING_OWNERS) readSigningKeys(dir, owner)
  if (existsSync(join(dir, 'operator.jwt')))
    for (const [which, key] of found)
      if (key === undefined)
        throw seedFileError(
          join(dir, IDENTITY_SEEDS[which]),
          `is missing (${ROLES[which]} identity) while operator.jwt exists: restore it from a backup of the auth dir`,
        )
  const seed = (which: Identity): Seed => {
    const key = found.find(([w]) => w === which)?.[1]
    return key === undefined ? seedOrCreate(join(dir, IDENTITY_SEEDS[which]), ROLES[which]) : { key, created: false }
  }
  return { operator: seed('operator'), system: seed('system'), log: seed('log') }
}

/** Reads an auth dir made by {@link initAuthDir}; `bus.config` when it is missing or incomplete. */
export function loadAuthDir(dir: string): AuthDir {
  const hint = 'is this a NATS auth dir made by nats-setup?'
  const key = (which: Identity) => identityKey(dir, IDENTITY_SEEDS[which], ROLES[which], hint)
  return {
    dir,
    operator: key('operator'),
    system: key('system'),
    log: key('log'),
    operatorJwt: readText(join(dir, 'operator.jwt')),
    systemAccountJwt: readText(join(dir, 'accounts', `${SYSTEM_ACCOUNT}.jwt`)),
    logAccountJwt: readText(join(dir, 'accounts', `${LOG_ACCOUNT}.jwt`)),
  }
}
