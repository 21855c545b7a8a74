import { existsSync, mkdirSync, rmSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { EventplaneError } from '@eventplane/core'
import type { KeyPair } from '@nats-io/nkeys'
import { type AuthDir, IDENTITY_SEEDS } from './auth-dir.ts'
import { withAuthDirLock } from './auth-lock.ts'
import { LOG_ACCOUNT, SYSTEM_ACCOUNT } from './claims.ts'
import { OFFLINE_RECORD, type OfflineSeeds, readOfflineSeeds } from './offline-key.ts'
import { writeFileAtomic } from './revocations.ts'
import { type SeedRole, readSeedFile, requireSeedFile, seedFileError, writeSeedFile } from './seed-file.ts'
import { type SigningOwner, readSigningKeys } from './signing-keys.ts'
import { listTenants, seedPath } from './tenants.ts'

/** One identity seed as `keys offline` / `keys online` moved it: its path in the auth dir and its public key. */
export interface MovedSeed {
  seed: string
  key: string
}

const roleOf = (rel: string): SeedRole => (rel === IDENTITY_SEEDS.operator ? 'operator' : 'account')

/** The identity seeds routine work needs none of, once every signing key is known to the server. */
function identitySeeds(auth: AuthDir): { rel: string; owner: SigningOwner; name: string }[] {
  return [
    { rel: IDENTITY_SEEDS.operator, owner: { operator: true }, name: 'the operator' },
    { rel: IDENTITY_SEEDS.system, owner: { account: SYSTEM_ACCOUNT }, name: 'the system account' },
    { rel: IDENTITY_SEEDS.log, owner: { account: LOG_ACCOUNT }, name: 'the log account' },
    ...listTenants(auth)
      .filter((r) => r.status === 'active')
      .map((r) => ({ rel: seedPath(r.tenant), owner: { tenant: r.tenant }, name: `tenant ${r.tenant}` })),
  ]
}

/** What brings the signing key of `owner` to the server (a push of a JWT listing it). */
function pushCommand(owner: SigningOwner): string {
  if ('operator' in owner) return 'evtctl keys rotate operator (two steps, each followed by a restart)'
  if ('tenant' in owner) return `evtctl tenant add ${owner.tenant}`
  return `evtctl keys rotate ${owner.account === LOG_ACCOUNT ? 'log' : 'system'}`
}

function writeOfflineSeeds(dir: string, seeds: OfflineSeeds): void {
  const file = join(dir, OFFLINE_RECORD)
  if (Object.keys(seeds).length === 0) rmSync(file, { force: true })
  else writeFileAtomic(file, `${JSON.stringify({ seeds }, null, 2)}\n`, 0o644)
}

/** Identity seeds still on the host while others are offline, and where `keys offline` moved the last ones. */
export interface SeedsLeftOnHost {
  /** Their paths in the auth dir (a tenant added since the last `keys offline`: `tenants/<tenant>.nk`). */
  seeds: string[]
  /** The directory of the latest move: `evtctl keys offline --to <to>` moves these there too. */
  to: string
}

/**
 * While identity seeds are offline (`identity-seeds.offline.json` records some): those still on the host, which
 * `keys offline` run again moves; undefined when none is offline (the record is read and checked).
 */
export function identitySeedsLeftOnHost(auth: AuthDir): SeedsLeftOnHost | undefined {
  const moved = Object.values(readOfflineSeeds(auth.dir)).sort((a, b) => a.moved_at.localeCompare(b.moved_at))
  const last = moved.at(-1)
  if (last === undefined) return undefined
  const seeds = identitySeeds(auth)
    .map((s) => s.rel)
    .filter((rel) => existsSync(join(auth.dir, rel)))
  return { seeds, to: last.to }
}

/**
 * `evtctl keys offline --to <dir>`: moves the identity seeds still on the host (`operator.nk`,
 * `accounts/SYS.nk`, `accounts/EVENTPLANE.nk`, each active tenant's `tenants/<tenant>.nk`) to `to` (same paths
 * under it, mode 0600 in 0700 directories), then removes them from the auth dir, which records each one's
 * public key and where it went (`identity-seeds.offline.json`). From then on users, account JWTs and
 * activation tokens are signed by signing keys only; what needs an identity seed (`keys rotate operator`, a
 * `nats-setup` after it) fails with `bus.config` naming the seed and `evtctl keys online --from <to>`.
 *
 * Refused (`bus.config`, nothing moved) while a signing key is not yet known to the server (an auth dir
 * upgraded from before signing keys, not pushed since): its identity key still signs for it. A seed already
 * at `to` is kept when it is the same seed, else refused. Each copy is read back before any seed leaves the
 * auth dir; cut short, the seeds left are still used and running it again finishes. Run again with some seeds
 * offline already, it moves those still on the host (a tenant added since) and keeps the record of the others
 * ({@link identitySeedsLeftOnHost} lists them); to another `to` than theirs it is refused (`keys online` reads one
 * directory). The record is read (and checked) before any copy. Holds the auth dir's lock.
 */
export async function moveIdentitySeedsOffline(auth: AuthDir, to: string): Promise<MovedSeed[]> {
  const target = resolve(to)
  if (target === resolve(auth.dir) || target.startsWith(`${resolve(auth.dir)}/`))
    throw new EventplaneError('bus.config', `--to ${to} is inside the auth dir: name a directory off the host`)
  return withAuthDirLock(auth, async () => {
    // Read (and checked) before any copy is written: a corrupted record fails with nothing moved.
    const record = readOfflineSeeds(auth.dir)
    const seeds = identitySeeds(auth)
    for (const { owner, name } of seeds) {
      const keys = readSigningKeys(auth.dir, owner)
      if (keys.current === undefined || !keys.pushed.includes(keys.current.getPublicKey()))
        throw new EventplaneError(
          'bus.config',
          `the signing key of ${name} is not known to the server yet, so its identity key still signs: ${pushCommand(owner)}, then run keys offline again`,
        )
    }
    const present: { rel: string; key: KeyPair }[] = []
    for (const { rel } of seeds) {
      const key = readSeedFile(join(auth.dir, rel), roleOf(rel))
      if (key === undefined) continue
      const there = readSeedFile(join(target, rel), roleOf(rel))
      if (there !== undefined && there.getPublicKey() !== key.getPublicKey())
        throw seedFileError(
          join(target, rel),
          record[rel]?.key === there.getPublicKey()
            ? `holds the seed keys offline moved there before (${there.getPublicKey()}), of an account revoked since (a tenant revoked and added again): move it away, then run keys offline again`
            : `holds another ${roleOf(rel)} seed: move it away or pick another --to`,
        )
      present.push({ rel, key })
    }
    // keys online reads every seed from one directory: those still on the host join the ones offline already.
    const elsewhere = Object.values(record).find((seed) => resolve(seed.to) !== target)
    if (present.length > 0 && elsewhere !== undefined)
      throw new EventplaneError(
        'bus.config',
        `identity seeds of ${auth.dir} are offline in ${elsewhere.to}: give --to ${elsewhere.to} (keys online --from reads every seed from one directory), or bring them back first (evtctl keys online --from <where they are now>)`,
      )
    for (const { rel, key } of present) {
      const file = join(target, rel)
      mkdirSync(dirname(file), { recursive: true, mode: 0o700 })
      writeSeedFile(file, key)
      if (requireSeedFile(file, roleOf(rel), 'the copy vanished').getPublicKey() !== key.getPublicKey())
        throw seedFileError(file, 'does not read back as the seed written')
    }
    const at = new Date().toISOString()
    for (const { rel, key } of present) record[rel] = { key: key.getPublicKey(), to: target, moved_at: at }
    writeOfflineSeeds(auth.dir, record)
    for (const { rel } of present) rmSync(join(auth.dir, rel))
    return present.map(({ rel, key }) => ({ seed: rel, key: key.getPublicKey() }))
  })
}

/**
 * `evtctl keys online --from <dir>`: brings back every identity seed `keys offline` moved (those of tenants
 * revoked since are dropped from the record): each read from `from` (same path) and checked to be the seed
 * whose public key the auth dir recorded, all before any is written (mode 0600); then the record is removed.
 * `bus.config` naming the file when one is missing, not a seed, or another key. The copies in `from` stay.
 * Holds the auth dir's lock.
 */
export async function bringIdentitySeedsOnline(auth: AuthDir, from: string): Promise<MovedSeed[]> {
  const source = resolve(from)
  return withAuthDirLock(auth, async () => {
    const record = readOfflineSeeds(auth.dir)
    const wanted = new Set(identitySeeds(auth).map((s) => s.rel))
    const back: { rel: string; key: KeyPair }[] = []
    for (const [rel, seed] of Object.entries(record)) {
      if (!wanted.has(rel) || existsSync(join(auth.dir, rel))) continue
      const file = join(source, rel)
      const key = requireSeedFile(file, roleOf(rel), `keys offline moved it to ${seed.to}`)
      if (key.getPublicKey() !== seed.key)
        throw seedFileError(file, `holds the seed of ${key.getPublicKey()}, not of ${seed.key} (${rel})`)
      back.push({ rel, key })
    }
    for (const { rel, key } of back) writeSeedFile(join(auth.dir, rel), key)
    writeOfflineSeeds(auth.dir, {})
    return back.map(({ rel, key }) => ({ seed: rel, key: key.getPublicKey() }))
  })
}
