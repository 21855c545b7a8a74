import assert from 'node:assert/strict'
import { execFile, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { copyFile, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join, relative, sep } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'
import { type TestNatsServer, startNatsServer } from '@eventplane/bus-nats/testing'
import { type TestDatabase, createTestDatabase } from '@eventplane/store-pg/testing'
import { within } from '../packages/bus-nats/test/fixtures.ts'
import { PACKAGES, ROOT, buildAndPack, freshProject } from '../scripts/pack.ts'
import { patchHunks } from './support/patch-hunks.ts'

const exec = promisify(execFile)

/** The files docs/getting-started.md shows: every fenced block whose info string names a file (```ts app.ts). */
async function guideFiles(): Promise<Map<string, string>> {
  const guide = await readFile(join(ROOT, 'docs/getting-started.md'), 'utf8')
  return new Map([...guide.matchAll(/^```\w+ ([\w.-]+)\n([\s\S]*?)^```$/gm)].map((m) => [m[1]!, m[2]!]))
}

/** Every directory of `tree` (a node_modules, nested ones included) that holds an installed package `name`. */
async function installedCopies(tree: string, name: string): Promise<string[]> {
  const out: string[] = []
  const walk = async (modules: string): Promise<void> => {
    if (!existsSync(modules)) return
    for (const entry of await readdir(modules)) {
      if (entry.startsWith('.')) continue
      const dirs = entry.startsWith('@')
        ? (await readdir(join(modules, entry))).map((e) => join(modules, entry, e))
        : [join(modules, entry)]
      for (const dir of dirs) {
        if (relative(modules, dir) === name && existsSync(join(dir, 'package.json'))) out.push(dir)
        await walk(join(dir, 'node_modules'))
      }
    }
  }
  await walk(tree)
  return out.sort()
}

/**
 * A new user's first hour, outside this repository: the packages are built and packed once, installed with plain
 * npm into a fresh project under the OS temp dir, and used there with plain node (no tsx, no workspace), with the
 * files docs/getting-started.md shows.
 */
describe('adoption: the packed packages, installed by npm into an empty project, used with plain node', () => {
  let packs: string
  let tarballs: string[]
  let project: string
  let db: TestDatabase
  let nats: TestNatsServer
  /** The environment every command gets: no EVENTPLANE_* or NODE_OPTIONS of ours, the test database. */
  let env: NodeJS.ProcessEnv

  // A clean build of five packages, pnpm pack and npm install: a minute on a loaded two-core machine.
  before(
    async () => {
      packs = await mkdtemp(join(tmpdir(), 'eventplane-packs-'))
      tarballs = await buildAndPack(packs)
      project = await freshProject([...tarballs, 'typescript@^7', '@types/node@^20', '@sinclair/typebox@^0.34'])
      db = await createTestDatabase('ep_adoption', { migrate: false })
      nats = await startNatsServer({ withAuth: false })
      env = {
        ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('EVENTPLANE_'))),
        NODE_OPTIONS: '',
        EVENTPLANE_DATABASE_URL: db.url,
        EVENTPLANE_NATS_URL: nats.url,
      }
    },
    { timeout: 300_000 },
  )
  after(async () => {
    await nats?.stop()
    await db?.drop()
    for (const dir of [packs, project]) if (dir) await rm(dir, { recursive: true, force: true })
  })

  /** `evtctl` as npm installed it (node_modules/.bin, plain node by its shebang); npx adds a second per call. */
  const evtctl = (args: string[]) => sh(join(project, 'node_modules/.bin/evtctl'), args)
  /** Runs a command in the project; rejects (with its output) on a non-zero exit. */
  const sh = (file: string, args: string[]) => exec(file, args, { cwd: project, env, encoding: 'utf8' })

  test('the project is outside the workspace and has no TypeScript runner', () => {
    assert.ok(relative(ROOT, project).startsWith('..'), `${project} is outside ${ROOT}`)
    assert.equal(existsSync(join(project, 'node_modules/tsx')), false)
  })

  test('every package is publishable: npm publish --dry-run, a published manifest, declarations without .ts', async () => {
    await Promise.all(
      tarballs.map(async (tarball) => {
        const { stdout, stderr } = await exec('npm', ['publish', '--dry-run', '--access', 'public', tarball], {
          cwd: packs,
          env,
          encoding: 'utf8',
        })
        assert.match(stdout + stderr, /\+ @eventplane\/[a-z-]+@0\.1\.0/)
      }),
    )
    for (const p of PACKAGES) {
      const dir = join(project, 'node_modules/@eventplane', p)
      const manifest = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8'))
      assert.equal(manifest.private, undefined, p)
      assert.equal(manifest.license, 'MIT', p)
      assert.ok(existsSync(join(dir, 'LICENSE')), `${p} ships its LICENSE`)
      assert.doesNotMatch(JSON.stringify(manifest.dependencies ?? {}), /workspace:/, p)
      assert.deepEqual(manifest.exports['.'], { types: './dist/index.d.ts', import: './dist/index.js' }, p)
      const files = (await readdir(join(dir, 'dist'), { recursive: true })).map(String)
      assert.ok(!files.some((f) => f.endsWith('.ts') && !f.endsWith('.d.ts')), `${p} ships no TypeScript sources`)
      for (const f of files.filter((f) => f.endsWith('.d.ts'))) {
        const text = await readFile(join(dir, 'dist', f), 'utf8')
        assert.doesNotMatch(text, /(from|import\()\s*['"]\.{1,2}\/[^'"]*\.ts['"]/, `${p}/dist/${f} imports a .ts path`)
      }
    }
    const migrations = await readdir(join(project, 'node_modules/@eventplane/store-pg/migrations'))
    assert.ok(migrations.includes('0001_events.sql'), 'store-pg ships its migrations')
  })

  test('store-pg carries the patched postgres.js: bundled, the one copy npm installs, resolved by store-pg alone', async () => {
    // patches/postgres@3.4.9.patch applies in this workspace only; store-pg's bundleDependencies ship the patched
    // driver in its tarball (docs/deploying.md). The other packages take its types from store-pg and name no postgres.
    const storePg = join(project, 'node_modules/@eventplane/store-pg')
    const driver = join(storePg, 'node_modules/postgres')
    const entry = createRequire(join(storePg, 'dist/index.js')).resolve('postgres')
    assert.ok(entry.startsWith(driver + sep), `store-pg resolves the driver it bundles, not ${entry}`)
    // Every hunk of the patch, as its new side reads: a bundled copy that lost one (a stale install, a hunk that
    // did not apply) fails here, not only one without the first hunk.
    const hunks = patchHunks(await readFile(join(ROOT, 'patches/postgres@3.4.9.patch'), 'utf8'))
    for (const build of ['src', 'cjs/src', 'cf/src'])
      assert.ok(
        hunks.some((h) => h.file === `${build}/connection.js` && h.added.length > 0),
        `the patch changes ${build}/connection.js`,
      )
    const files = new Map<string, string>()
    for (const hunk of hunks) {
      if (!files.has(hunk.file)) files.set(hunk.file, await readFile(join(driver, hunk.file), 'utf8'))
      assert.ok(files.get(hunk.file)!.includes(hunk.after), `the bundled ${hunk.file} has the hunk ${hunk.header}`)
    }
    // So npm installs one copy, the patched one store-pg bundles: no unpatched copy at the top for an application's
    // own `import postgres from 'postgres'` to find.
    assert.deepEqual(await installedCopies(join(project, 'node_modules'), 'postgres'), [driver])
    for (const p of PACKAGES.filter((p) => p !== 'store-pg')) {
      const dir = join(project, 'node_modules/@eventplane', p)
      const manifest = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8'))
      assert.equal(manifest.dependencies?.postgres, undefined, `${p} depends on postgres`)
      // Neither loaded (.js) nor named by a declaration (.d.ts): their types come from store-pg's re-exports.
      const dist = join(dir, 'dist')
      for (const f of (await readdir(dist, { recursive: true }))
        .map(String)
        .filter((f) => f.endsWith('.js') || f.endsWith('.d.ts'))) {
        const text = await readFile(join(dist, f), 'utf8')
        assert.doesNotMatch(text, /(from|import\()\s*['"]postgres['"]/, `${p}/dist/${f} names postgres itself`)
      }
    }
  })

  test("the installed store-pg's pool connects again at once after its session was ended inside a transaction", {
    timeout: 60_000,
  }, async () => {
    // The rounds of packages/store-pg/test/pg-terminated-reconnect.test.ts, with plain node on the installed
    // packages: unpatched, each later connect of that connection times out (connect_timeout, 10 s), for good.
    await copyFile(join(ROOT, 'tests/support/installed-reconnect.mjs'), join(project, 'installed-reconnect.mjs'))
    const { stdout } = await sh('node', ['installed-reconnect.mjs'])
    const { rounds } = JSON.parse(stdout) as { rounds: number[] }
    assert.equal(rounds.length, 3)
    for (const ms of rounds) assert.ok(ms < 5000, `answered after ${ms} ms`)
  })

  test('npx evtctl --help and npx evtctl migrate work against a fresh database', async () => {
    const help = await sh('npx', ['evtctl', '--help'])
    assert.match(help.stdout, /^Usage: evtctl /)
    assert.match(help.stdout, /^ {2}migrate +apply the pending PostgreSQL migrations/m)

    const first = await sh('npx', ['evtctl', 'migrate'])
    assert.match(first.stdout, /^applied 0001_events\.sql$/m)
    const again = await sh('npx', ['evtctl', 'migrate', '--json'])
    const result = JSON.parse(again.stdout)
    assert.deepEqual(result.applied, [])
    assert.ok(result.already_applied.includes('0001_events.sql'))
  })

  test('nats-setup, as npm installed it, writes the auth dir with every tier creds file and the server config', async () => {
    // infra/nats/README.md and docs/deploying.md start a deployment with it; installed, it is the bus-nats bin.
    const out = join(project, 'nats-deploy')
    await sh(join(project, 'node_modules/.bin/nats-setup'), [
      ...['--auth-dir', join(out, 'auth'), '--store-dir', join(out, 'jetstream'), '--out', join(out, 'nats.conf')],
    ])
    for (const tier of ['relay', 'gateway', 'controller', 'operator']) {
      assert.ok(existsSync(join(out, 'auth/creds', `${tier}.creds`)), `nats-setup wrote creds/${tier}.creds`)
    }
    assert.match(await readFile(join(out, 'nats.conf'), 'utf8'), /^resolver \{/m)
  })

  test('a strict TypeScript consumer (nodenext) type-checks against the declarations of all five, appends and reads', async () => {
    const files = await guideFiles()
    for (const name of ['tsconfig.json', 'app.ts']) {
      assert.ok(files.has(name), `docs/getting-started.md shows ${name}`)
      await writeFile(join(project, name), files.get(name)!)
    }
    // One compile, the guide's options with installed-pools.ts beside app.ts (each tsc start is seconds of CPU): the
    // other packages' declarations take the driver's types from store-pg (no postgres at the top to resolve).
    await copyFile(join(ROOT, 'tests/support/installed-pools.ts'), join(project, 'installed-pools.ts'))
    const guide = JSON.parse(files.get('tsconfig.json')!)
    await writeFile(
      join(project, 'tsconfig.both.json'),
      JSON.stringify({ ...guide, include: [...guide.include, 'installed-pools.ts'] }),
    )
    await sh(join(project, 'node_modules/.bin/tsc'), ['-p', 'tsconfig.both.json']).catch((e: { stdout?: string }) =>
      assert.fail(`${e.stdout}`),
    )
    const first = await sh('node', ['dist/app.js'])
    assert.deepEqual(JSON.parse(first.stdout), [{ type: 'create', version: 1, kind: 'intent', tenant: 'acme' }])
    const second = await sh('node', ['dist/app.js'])
    assert.deepEqual(JSON.parse(second.stdout), [
      { type: 'create', version: 1, kind: 'intent', tenant: 'acme' },
      { type: 'create', version: 2, kind: 'intent', tenant: 'acme' },
    ])
  })

  test('a plain .js domain runs with evtctl up --domain: the gateway checks its schemas, it reconciles, state shows it', {
    timeout: 120_000,
  }, async () => {
    const files = await guideFiles()
    assert.ok(files.has('domain.js'), 'docs/getting-started.md shows domain.js')
    await writeFile(join(project, 'domain.js'), files.get('domain.js')!)

    // The installed bin itself, not through npx: npx does not pass SIGTERM on to it.
    const up = spawn(join(project, 'node_modules/.bin/evtctl'), ['up', '--domain', './domain.js', '--json'], {
      cwd: project,
      env,
    })
    let upOutput = ''
    up.stdout.on('data', (b: Buffer) => (upOutput += b.toString('utf8')))
    up.stderr.on('data', (b: Buffer) => (upOutput += b.toString('utf8')))
    const upExit = new Promise<number | null>((resolve) => up.once('close', resolve))
    try {
      await within(
        (async () => {
          while (!upOutput.includes('"ready":true')) {
            if (up.exitCode !== null) throw new Error(`evtctl up exited ${up.exitCode}: ${upOutput}`)
            await sleep(100)
          }
        })(),
        60_000,
        'evtctl up to be ready',
      )
      const ready = JSON.parse(upOutput.split('\n').find((l) => l.includes('"ready":true'))!)
      assert.deepEqual([...ready.runtime].sort(), ['accounts', 'balances'])

      const refused: { code?: number; stderr?: string } | undefined = await evtctl([
        'publish',
        'acme/account/alice',
        'deposit',
        '--data',
        '{"amount":"ten"}',
      ]).then(
        () => undefined,
        (e) => e,
      )
      assert.ok(refused, 'the gateway accepted a deposit of "ten"')
      assert.equal(refused.code, 1)
      assert.match(refused.stderr ?? '', /^evtctl: core\.schema_violation: /m)

      for (const amount of [10, 32]) {
        await evtctl(['publish', 'acme/account/alice', 'deposit', '--data', JSON.stringify({ amount })])
      }
      const balance = async () => {
        const { stdout } = await evtctl(['state', 'balances', '--tenant', 'acme', '--domain', './domain.js', '--json'])
        // One JSON document per key; none (or a "no state" line) before the projection has seen a fact.
        return stdout
          .split('\n')
          .filter((l) => l.startsWith('{'))
          .map((l) => JSON.parse(l))
      }
      // Waited for in the database (each evtctl start costs ~0.5 s of CPU), then shown by evtctl state once.
      const deposits = async () =>
        (
          await db.admin`select state from eventplane.projection_state
            where projection = 'balances' and tenant_id = 'acme' and key = 'alice' order by generation desc limit 1`
        )[0]?.state?.deposits
      for (const deadline = Date.now() + 30_000; (await deposits()) !== 2 && Date.now() < deadline; ) await sleep(200)
      const rows = await balance()
      assert.deepEqual(rows, [
        { projection: 'balances', tenant: 'acme', key: 'alice', state: { balance: 42, deposits: 2 } },
      ])

      const read = await evtctl(['read', 'acme/account/alice', '--json'])
      const events = read.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l))
      assert.deepEqual(
        events.map((e: { kind: string; type: string }) => `${e.kind}:${e.type}`).sort(),
        ['intent:deposit', 'fact:credited', 'intent:deposit', 'fact:credited'].sort(),
      )
    } finally {
      up.kill('SIGTERM')
    }
    assert.equal(await within(upExit, 30_000, 'evtctl up to stop on SIGTERM'), 0, upOutput)
  })
})
