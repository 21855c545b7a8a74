import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { EventplaneError } from '@eventplane/core'
import type { KeyPair } from '@nats-io/nkeys'
import { Type } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import { LOG_ACCOUNT, SYSTEM_ACCOUNT } from './claims.ts'
import { type SeedRole, readSeedFile, requireSeedFile, seedFileError } from './seed-file.ts'

/**
 * `identity-seeds.offline.json` in the auth dir: the identity seeds `evtctl keys offline` moved off the host,
 * each with its public key and where it went. Public: no secret in it.
 */
export const OFFLINE_RECORD = 'identity-seeds.offline.json'

/** One identity seed moved off the host: its public key, and the directory it was moved to. */
export interface OfflineSeed {
  key: string
  to: string
  moved_at: string
}

/** The auth dir's offline identity seeds, by their path in the auth dir (`operator.nk`, `accounts/SYS.nk`, …). */
export type OfflineSeeds = Record<string, OfflineSeed>

const PUBLIC_KEY = '^[OA][A-Z2-7]{55}$'
/** The paths an identity seed has in the auth dir: the operator's, the system and log accounts', a tenant's. */
const SEED_PATH = `^(operator\\.nk|accounts/(${SYSTEM_ACCOUNT}|${LOG_ACCOUNT})\\.nk|tenants/[A-Za-z0-9_-]+\\.nk)$`

const OfflineRecord = TypeCompiler.Compile(
  Type.Object({
    seeds: Type.Record(
      Type.String({ pattern: SEED_PATH }),
      Type.Object({
        key: Type.String({ pattern: PUBLIC_KEY }),
        to: Type.String({ minLength: 1 }),
        moved_at: Type.String({ minLength: 1 }),
      }),
      { additionalProperties: false },
    ),
  }),
)

/** What is wrong with a parsed record, or undefined when it is one: its first fault, never its content. */
function recordFault(value: unknown): string | undefined {
  const error = OfflineRecord.Errors(value).First()
  if (error !== undefined) {
    // An unexpected property's path is the file's own text: not quoted.
    if (error.message === 'Unexpected property') return '/seeds: an entry not at the path of an identity seed'
    const path = error.path.replaceAll('~1', '/').replaceAll('~0', '~') || '/'
    return `${path}: ${error.message.replace(/^Expected /, 'expected ').replace(/ to match '.*'$/, ' of its form')}`
  }
  for (const [rel, seed] of Object.entries((value as { seeds: OfflineSeeds }).seeds)) {
    const role = rel === 'operator.nk' ? 'operator' : 'account'
    if (!seed.key.startsWith(role === 'operator' ? 'O' : 'A'))
      return `/seeds/${rel}/key: ${role === 'operator' ? 'an account' : 'an operator'} public key, not ${role === 'operator' ? 'an operator' : 'an account'} one`
  }
  return undefined
}

/**
 * The auth dir's {@link OFFLINE_RECORD}, empty when there is none. `bus.config`, one line naming the file and
 * its first fault (never its content), when it is not JSON or not a record of identity seeds: every entry at an
 * identity seed's path, with a public key of that seed's role, where it went and when.
 */
export function readOfflineSeeds(dir: string): OfflineSeeds {
  const file = join(dir, OFFLINE_RECORD)
  if (!existsSync(file)) return {}
  const bad = (fault: string) =>
    new EventplaneError('bus.config', `${file} is not a record of offline identity seeds (${fault})`, {
      details: { file },
    })
  let value: unknown
  try {
    value = JSON.parse(readFileSync(file, 'utf8'))
  } catch {
    // No cause: what JSON.parse says quotes the content.
    throw bad('not JSON: truncated or corrupted')
  }
  const fault = recordFault(value)
  if (fault !== undefined) throw bad(fault)
  return (value as { seeds: OfflineSeeds }).seeds
}

/** The command that brings `seed` back, for messages. */
export const onlineCommand = (seed: OfflineSeed): string => `evtctl keys online --from ${seed.to}`

/**
 * `bus.config` for an operation that needs an identity seed moved off the host: names the seed, what needs it
 * and the command that brings it back.
 */
export function offlineSeedError(file: string, seed: OfflineSeed, needs: string): EventplaneError {
  return seedFileError(file, `is offline (moved by evtctl keys offline); ${needs} needs it: ${onlineCommand(seed)}`)
}

/**
 * The key pair of an identity seed that is offline: its public key only. Whatever would sign with it (or read
 * its seed) throws {@link offlineSeedError}; an operation that needs it checks {@link requireOnline} before it
 * writes anything, this is the last guard.
 */
class OfflineKey implements KeyPair {
  constructor(
    readonly file: string,
    readonly seed: OfflineSeed,
  ) {}

  getPublicKey(): string {
    return this.seed.key
  }

  #refuse(): never {
    throw offlineSeedError(this.file, this.seed, 'signing with it')
  }

  getPrivateKey(): Uint8Array {
    return this.#refuse()
  }

  getSeed(): Uint8Array {
    return this.#refuse()
  }

  sign(): Uint8Array {
    return this.#refuse()
  }

  verify(): boolean {
    return this.#refuse()
  }

  clear(): void {}

  seal(): Uint8Array {
    return this.#refuse()
  }

  open(): Uint8Array | null {
    return this.#refuse()
  }
}

/** Throws {@link offlineSeedError} (saying `needs` needs it) when `key` is an offline identity key. */
export function requireOnline(key: KeyPair, needs: string): void {
  if (key instanceof OfflineKey) throw offlineSeedError(key.file, key.seed, needs)
}

/** Whether `key` is an offline identity key (its public key only). */
export const isOffline = (key: KeyPair): boolean => key instanceof OfflineKey

/**
 * An identity seed of the auth dir (`rel`: `operator.nk`, `accounts/<account>.nk`, `tenants/<tenant>.nk`): the
 * seed in its file ({@link readSeedFile}); when the file is gone and `keys offline` moved it, its public key
 * only ({@link OfflineKey}); else `bus.config` saying it is missing, and `hint`.
 */
export function identityKey(dir: string, rel: string, role: SeedRole, hint: string): KeyPair {
  return identityKeyIfKnown(dir, rel, role) ?? requireSeedFile(join(dir, rel), role, hint)
}

/** {@link identityKey} when the seed is there or offline; undefined when it is neither. */
export function identityKeyIfKnown(dir: string, rel: string, role: SeedRole): KeyPair | undefined {
  const file = join(dir, rel)
  const key = readSeedFile(file, role)
  if (key !== undefined) return key
  const offline = readOfflineSeeds(dir)[rel]
  return offline === undefined ? undefined : new OfflineKey(file, offline)
}
