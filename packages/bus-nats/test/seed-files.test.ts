/**
 * One reader for every seed file of the auth dir (`seed-file.ts`): a missing, unreadable, corrupted or
 * wrong-role `.nk` file fails with `bus.config` and one line naming the file and what is wrong with it, never
 * its content, before anything is written, through the entry points users hit: `loadAuthDir` (every evtctl
 * command on the auth dir), `nats-setup` run again, a tenant's re-add and rotations.
 */
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { isEventplaneError } from '@eventplane/core'
import {
  connectAuthDirUser,
  connectTenantAdmin,
  initAuthDir,
  loadAuthDir,
  natsSetupMain,
  rotateSigningKey,
  rotateTenantUser,
  signingSeedFile,
} from '../src/nats-config/index.ts'
import { type TestNatsServer, dirSnapshot, startNatsServer } from '../src/testing/index.ts'

/**
 * A seed with one character of its key changed: still base32, its checksum no longer matches. (Not the last
 * character: two of its five bits are padding, which a decoder drops.)
 */
const corrupted = (seed: string): string => `${seed.slice(0, 10)}${seed[10] === 'A' ? 'B' : 'A'}${seed.slice(11)}`

const seedOf = (file: string): string => readFileSync(file, 'utf8').trim()

/**
 * Asserts the one seed-file error: `bus.config`, one line, naming `file` and matching `problem`, holding none of
 * `secrets` (the file's content, the seed it should have held).
 */
function seedFileError(file: string, problem: RegExp, secrets: readonly string[]) {
  return (e: unknown): boolean => {
    assert.ok(isEventplaneError(e, 'bus.config'), `bus.config, got ${String(e)}`)
    assert.equal(e.message.includes('\n'), false, `one line: ${e.message}`)
    assert.ok(e.message.includes(file), `names ${file}: ${e.message}`)
    assert.match(e.message, problem)
    for (const s of secrets) assert.equal(`${e.message} ${JSON.stringify(e.details)}`.includes(s), false, 'no seed')
    return true
  }
}

const NOT_A_SEED = /does not hold an nkey seed/

describe('a bad seed file in the auth dir', () => {
  const dirs: string[] = []
  const temp = (): string => {
    const dir = mkdtempSync(join(tmpdir(), 'ep-seeds-'))
    dirs.push(dir)
    return dir
  }
  let server: TestNatsServer
  before(async () => {
    server = await startNatsServer({ tenants: ['acme'] })
  })
  after(async () => {
    await server?.stop()
    for (const d of dirs) rmSync(d, { recursive: true, force: true })
  })

  test('loadAuthDir: a missing, unreadable, corrupted or wrong-role identity seed is bus.config naming it', async () => {
    const dir = join(temp(), 'auth')
    await initAuthDir(dir)
    const operator = join(dir, 'operator.nk')
    const system = join(dir, 'accounts', 'SYS.nk')
    const log = join(dir, 'accounts', 'EVENTPLANE.nk')
    const seeds = { operator: seedOf(operator), system: seedOf(system), log: seedOf(log) }
    const all = Object.values(seeds)
    const restore = () => {
      rmSync(system, { recursive: true, force: true })
      for (const [file, seed] of [
        [operator, seeds.operator],
        [system, seeds.system],
        [log, seeds.log],
      ] as const)
        writeFileSync(file, `${seed}\n`, { mode: 0o600 })
    }
    const cases: [string, () => void, string, RegExp][] = [
      ['missing', () => rmSync(operator), operator, /is missing \(an operator seed\)/],
      ['corrupted', () => writeFileSync(log, corrupted(seeds.log)), log, NOT_A_SEED],
      ['wrong role', () => writeFileSync(operator, seeds.log), operator, /holds an account seed, not an operator seed/],
      [
        'wrong role',
        () => writeFileSync(system, seeds.operator),
        system,
        /holds an operator seed, not an account seed/,
      ],
      [
        'unreadable',
        () => {
          rmSync(system)
          mkdirSync(system)
        },
        system,
        /cannot be read \(EISDIR\)/,
      ],
    ]
    for (const [what, breakIt, file, problem] of cases) {
      breakIt()
      const before = dirSnapshot(dir)
      assert.throws(() => loadAuthDir(dir), seedFileError(file, problem, [...all, corrupted(seeds.log)]), what)
      assert.deepEqual(dirSnapshot(dir), before, `${what}: nothing written`)
      restore()
    }
    assert.equal(loadAuthDir(dir).operator.getPublicKey()[0], 'O', 'restored, it loads')
  })

  test('nats-setup run again: a missing identity seed, a corrupted or wrong-role signing seed fail before anything is written', async () => {
    const root = temp()
    const dir = join(root, 'auth')
    const setup = () =>
      natsSetupMain(['--auth-dir', dir, '--store-dir', join(root, 'store'), '--out', join(root, 'nats.conf')], {
        stdout: { write: () => true },
        stderr: { write: () => true },
      })
    assert.equal(await setup(), 0)
    const log = join(dir, 'accounts', 'EVENTPLANE.nk')
    const opSigning = signingSeedFile(dir, { operator: true })
    const sysSigning = signingSeedFile(dir, { account: 'SYS' })
    const seeds = { log: seedOf(log), opSigning: seedOf(opSigning), sysSigning: seedOf(sysSigning) }
    const secrets = [...Object.values(seeds), corrupted(seeds.opSigning)]
    const restore = () => {
      for (const [file, seed] of [
        [log, seeds.log],
        [opSigning, seeds.opSigning],
        [sysSigning, seeds.sysSigning],
      ] as const)
        writeFileSync(file, `${seed}\n`, { mode: 0o600 })
    }
    const cases: [string, () => void, string, RegExp][] = [
      // A new log account would be another account: its stream and every service's creds lost.
      [
        'missing log account seed',
        () => rmSync(log),
        log,
        /is missing \(account identity\) while operator\.jwt exists/,
      ],
      [
        // The system account's signing seed missing too: it would be made before the operator's was read.
        'corrupted operator signing seed',
        () => {
          rmSync(sysSigning)
          writeFileSync(opSigning, corrupted(seeds.opSigning))
        },
        opSigning,
        NOT_A_SEED,
      ],
      [
        'an account seed as the operator signing seed',
        () => writeFileSync(opSigning, seeds.sysSigning),
        opSigning,
        /holds an account seed, not an operator seed/,
      ],
    ]
    for (const [what, breakIt, file, problem] of cases) {
      breakIt()
      const before = dirSnapshot(dir)
      await assert.rejects(setup(), seedFileError(file, problem, secrets), what)
      assert.deepEqual(dirSnapshot(dir), before, `${what}: nothing written`)
      restore()
    }
    const config = readFileSync(join(root, 'nats.conf'), 'utf8')
    assert.equal(await setup(), 0, 'restored, it runs')
    assert.equal(readFileSync(join(root, 'nats.conf'), 'utf8'), config, 'the same config as before')
  })

  test("a tenant's account seed missing, corrupted or of the wrong role: re-add, rotate and keys rotate fail before anything is written", async () => {
    const dir = server.authDir!
    const auth = loadAuthDir(dir)
    const identity = join(dir, 'tenants', 'acme.nk')
    const signing = signingSeedFile(dir, { tenant: 'acme' })
    const seeds = { identity: seedOf(identity), signing: seedOf(signing) }
    const secrets = [...Object.values(seeds), corrupted(seeds.identity), corrupted(seeds.signing)]
    secrets.push(seedOf(join(dir, 'operator.nk')), seedOf(join(dir, 'operator.signing.nk')))
    const connect = () => connectAuthDirUser(auth, 'system', server.url)
    const cases: [string, () => void, () => Promise<unknown>, string, RegExp][] = [
      [
        're-add, corrupted account seed',
        () => writeFileSync(identity, corrupted(seeds.identity)),
        () => server.addTenant('acme'),
        identity,
        NOT_A_SEED,
      ],
      [
        'rotate, missing account seed',
        () => rmSync(identity),
        async () => {
          const admin = await connectTenantAdmin(auth, server.url)
          await rotateTenantUser(auth, admin, 'acme').finally(() => admin.close())
        },
        identity,
        /is missing \(an account seed\): tenant acme has no account key/,
      ],
      [
        'keys rotate, the operator seed as its signing seed',
        () => writeFileSync(signing, seedOf(join(dir, 'operator.nk'))),
        () => rotateSigningKey(auth, connect, { tenant: 'acme' }),
        signing,
        /holds an operator seed, not an account seed/,
      ],
      [
        're-add, the operator signing seed as its signing seed',
        () => writeFileSync(signing, seedOf(join(dir, 'operator.signing.nk'))),
        () => server.addTenant('acme'),
        signing,
        /holds an operator seed, not an account seed/,
      ],
      [
        'a new tenant, a corrupted signing seed left behind',
        () => writeFileSync(signingSeedFile(dir, { tenant: 'initech' }), corrupted(seeds.signing)),
        () => server.addTenant('initech'),
        signingSeedFile(dir, { tenant: 'initech' }),
        NOT_A_SEED,
      ],
    ]
    for (const [what, breakIt, run, file, problem] of cases) {
      breakIt()
      const before = dirSnapshot(dir)
      await assert.rejects(run(), seedFileError(file, problem, secrets), what)
      assert.deepEqual(dirSnapshot(dir), before, `${what}: nothing written`)
      writeFileSync(identity, `${seeds.identity}\n`, { mode: 0o600 })
      writeFileSync(signing, `${seeds.signing}\n`, { mode: 0o600 })
    }
    rmSync(signingSeedFile(dir, { tenant: 'initech' }))
    assert.equal((await server.addTenant('initech')).created, true, 'without it, initech is added')
    const acme = await server.connect('acme')
    await acme.flush()
  })
})
