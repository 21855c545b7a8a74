import { existsSync, readFileSync, renameSync } from 'node:fs'
import { join } from 'node:path'
import type { KeyPair } from '@nats-io/nkeys'
import { writeFileAtomic } from './revocations.ts'
import { type SeedRole, readSeedFile, seedOrCreate } from './seed-file.ts'

/**
 * Whose signing keys: the system or log account (`accounts/<account>.signing*`),
 * a tenant's account (`tenants/<tenant>.signing*`), or the operator
 * (`operator.signing*`: its signing keys sign the account JWTs).
 */
export type SigningOwner = { account: 'SYS' | 'EVENTPLANE' } | { tenant: string } | { operator: true }

/**
 * An account's signing keys as the auth dir holds them: `current` signs its
 * users; `next` exists while a signing-key rotation runs (listed in the JWT,
 * signing the re-issued creds). `pushed` is what the JWT last pushed to the
 * server listed: a signing key signs everyday users only once the server
 * knows it, so an auth dir upgraded without a restart never writes creds the
 * server refuses.
 */
export interface SigningKeys {
  current: KeyPair | undefined
  next: KeyPair | undefined
  pushed: string[]
}

function base(dir: string, owner: SigningOwner): string {
  if ('operator' in owner) return join(dir, 'operator')
  return 'account' in owner ? join(dir, 'accounts', owner.account) : join(dir, 'tenants', owner.tenant)
}

/** Operator signing keys are operator keys, accounts' are account keys. */
const role = (owner: SigningOwner): SeedRole => ('operator' in owner ? 'operator' : 'account')

/** `<base>.signing.nk` (the current key) or `<base>.signing.next.nk` (a rotation's new key). */
export function signingSeedFile(dir: string, owner: SigningOwner, which: 'current' | 'next' = 'current'): string {
  return `${base(dir, owner)}.signing${which === 'next' ? '.next' : ''}.nk`
}

/** `<base>.signing.pushed` (JSON; not `.json`, which names tenant records): the keys the server was last pushed. */
export function signingPushedFile(dir: string, owner: SigningOwner): string {
  return `${base(dir, owner)}.signing.pushed`
}

export function readSigningKeys(dir: string, owner: SigningOwner): SigningKeys {
  const file = signingPushedFile(dir, owner)
  const pushed = existsSync(file)
    ? ((JSON.parse(readFileSync(file, 'utf8')) as { pushed?: string[] }).pushed ?? [])
    : []
  return {
    current: readSeedFile(signingSeedFile(dir, owner), role(owner)),
    next: readSeedFile(signingSeedFile(dir, owner, 'next'), role(owner)),
    pushed,
  }
}

/** The account's current signing key, created (mode 0600) when it has none; `created` says which. */
export function ensureSigningKey(dir: string, owner: SigningOwner): { key: KeyPair; created: boolean } {
  return seedOrCreate(signingSeedFile(dir, owner), role(owner))
}

/** The rotation's new key: the one a rotation cut short left, else a new one (mode 0600). */
export function ensureNextSigningKey(dir: string, owner: SigningOwner): KeyPair {
  return seedOrCreate(signingSeedFile(dir, owner, 'next'), role(owner)).key
}

/** Makes the rotation's new key the current one (a rename: the old seed is gone from the auth dir). */
export function promoteNextSigningKey(dir: string, owner: SigningOwner): void {
  renameSync(signingSeedFile(dir, owner, 'next'), signingSeedFile(dir, owner))
}

/** The `signing_keys` claim of the account's JWT: the current key, and a rotation's new key. */
export function signingKeysClaim(keys: SigningKeys): string[] {
  return [keys.current, keys.next].filter((k) => k !== undefined).map((k) => k.getPublicKey())
}

/** Records what the JWT just pushed to the server listed (after the server took it). */
export function markSigningKeysPushed(dir: string, owner: SigningOwner, claim: readonly string[]): void {
  writeFileAtomic(signingPushedFile(dir, owner), `${JSON.stringify({ pushed: claim }, null, 2)}\n`, 0o644)
}

/**
 * The key that signs the account's users: its current signing key once a JWT
 * listing it was pushed, else the account's identity key (an auth dir made
 * or upgraded and not pushed since: the server may not know the signing key
 * before a restart with the re-generated config).
 */
export function userSigner(dir: string, owner: SigningOwner, identity: KeyPair): KeyPair {
  const keys = readSigningKeys(dir, owner)
  if (keys.current !== undefined && keys.pushed.includes(keys.current.getPublicKey())) return keys.current
  return identity
}

/**
 * The key that signs account JWTs: the operator's current signing key once the server is known to trust it (an
 * auth dir made with it, or a JWT it signed accepted by the server), else the operator's identity key.
 */
export function accountSigner(auth: { dir: string; operator: KeyPair }): KeyPair {
  return userSigner(auth.dir, { operator: true }, auth.operator)
}
