import { readFileSync } from 'node:fs'
import { EventplaneError } from '@eventplane/core'
import type { KeyPair } from '@nats-io/nkeys'
import { createAccount, createOperator, createUser, fromSeed } from '../nkeys.ts'
import { writeFileAtomic } from './revocations.ts'

/** Whose seed a `.nk` file holds: what its public key starts with (`O`, `A`, `U`). */
export type SeedRole = 'operator' | 'account' | 'user'

const PREFIX: Record<SeedRole, string> = { operator: 'O', account: 'A', user: 'U' }
const CREATE: Record<SeedRole, () => KeyPair> = {
  operator: createOperator,
  account: createAccount,
  user: createUser,
}

const an = (role: SeedRole): string => `${role === 'operator' || role === 'account' ? 'an' : 'a'} ${role} seed`

/**
 * The one error of a seed file: `bus.config`, one line naming the file and what is wrong with it (missing,
 * unreadable, not a seed, a seed of another role), never its content.
 */
export function seedFileError(file: string, problem: string, cause?: unknown): EventplaneError {
  return new EventplaneError('bus.config', `seed file ${file} ${problem}`, {
    ...(cause === undefined ? {} : { cause }),
    details: { file },
  })
}

/**
 * The key pair of the `role` seed in `file` (an auth dir's `*.nk`; surrounding whitespace ignored), or undefined
 * when there is no such file. `bus.config` when it cannot be read, holds no nkey seed, or holds a seed of
 * another role (an account seed where an operator seed belongs): a file is never taken for another's key.
 */
export function readSeedFile(file: string, role: SeedRole): KeyPair | undefined {
  let text: string
  try {
    text = readFileSync(file, 'utf8').trim()
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    if (code === 'ENOENT') return undefined
    throw seedFileError(file, `cannot be read (${code ?? 'error'})`, e)
  }
  let key: KeyPair
  try {
    key = fromSeed(new TextEncoder().encode(text))
  } catch {
    // No cause: what nkeys throws is about the content, which no error carries.
    throw seedFileError(file, 'does not hold an nkey seed')
  }
  const found = (Object.keys(PREFIX) as SeedRole[]).find((r) => key.getPublicKey().startsWith(PREFIX[r]))
  if (found !== role) throw seedFileError(file, `holds ${found ? an(found) : 'another kind of seed'}, not ${an(role)}`)
  return key
}

/** {@link readSeedFile} of a seed that must be there: `bus.config` saying it is missing, and `hint` (what to do). */
export function requireSeedFile(file: string, role: SeedRole, hint: string): KeyPair {
  const key = readSeedFile(file, role)
  if (key === undefined) throw seedFileError(file, `is missing (${an(role)}): ${hint}`)
  return key
}

/** Writes `key`'s seed to `file` atomically (mode 0600, also over a file with wider permissions). */
export function writeSeedFile(file: string, key: KeyPair): void {
  writeFileAtomic(file, `${new TextDecoder().decode(key.getSeed())}\n`, 0o600)
}

/** The `role` seed in `file` ({@link readSeedFile}), or a new one written there; `created` says which. */
export function seedOrCreate(file: string, role: SeedRole): { key: KeyPair; created: boolean } {
  const existing = readSeedFile(file, role)
  if (existing !== undefined) return { key: existing, created: false }
  const key = CREATE[role]()
  writeSeedFile(file, key)
  return { key, created: true }
}
