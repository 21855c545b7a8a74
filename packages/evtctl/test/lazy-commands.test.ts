import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { buildFullProgram, run } from '../src/index.ts'
import type { CliIo } from '../src/io.ts'
import { createTestDatabase } from '@eventplane/store-pg/testing'

const MAIN = fileURLToPath(new URL('../src/main.ts', import.meta.url))
const RECORDER = fileURLToPath(new URL('./support/record-loads.ts', import.meta.url))

function bufferIo(): { io: CliIo; out: () => string } {
  let out = ''
  const io: CliIo = { stdout: { write: (s: string) => (out += s) }, stderr: { write: () => true }, env: {} }
  return { io, out: () => out }
}

let dir: string
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'evtctl-loads-'))
})
after(async () => {
  await rm(dir, { recursive: true, force: true })
})

/** The module URLs `evtctl <args>` resolves, run from the sources as the workspace runs it; it must exit `status`. */
async function modulesLoadedBy(args: string[], env: NodeJS.ProcessEnv = {}, status = 0): Promise<string[]> {
  const file = join(dir, `${args.join('_').replace(/\W/g, '')}.txt`)
  const child = spawnSync(process.execPath, ['--import', 'tsx', '--import', RECORDER, MAIN, ...args], {
    env: { ...process.env, ...env, RECORD_LOADS_FILE: file },
    encoding: 'utf8',
  })
  assert.equal(child.status, status, child.stderr)
  return (await readFile(file, 'utf8')).trim().split('\n')
}

const HEAVY = [
  /\/node_modules\/(\.pnpm\/[^/]+\/node_modules\/)?(postgres|pino|pino-pretty|@nats-io\/[^/]+|@sinclair\/typebox)\//,
  /\/packages\/(core|store-pg|bus-nats|runtime)\//,
  /\/packages\/evtctl\/src\/commands\//,
]

test('evtctl --help lists every command with the usage and summary the command itself defines', async () => {
  const listed = bufferIo()
  assert.equal(await run(['--help'], listed.io), 0)
  const full = bufferIo()
  const program = await buildFullProgram(full.io)
  assert.ok(program.commands.length >= 14)
  await assert.rejects(program.parseAsync(['--help'], { from: 'user' }), { code: 'commander.helpDisplayed' })
  const help = program.createHelp()
  const entries = program.commands.map((c) => ({
    name: c.name(),
    usage: help.subcommandTerm(c).slice(c.name().length + 1),
    summary: help.subcommandDescription(c),
  }))
  assert.equal(
    listed.out(),
    full.out(),
    `evtctl --help differs from the commands: COMMANDS in packages/evtctl/src/program.ts should say\n${entries
      .map((e) => JSON.stringify(e))
      .join('\n')}`,
  )
})

test('evtctl --help and --version load no command module, store, bus, logger or schema code', async () => {
  for (const args of [['--help'], ['--version'], ['--log-level', 'info', '--help']]) {
    const loaded = await modulesLoadedBy(args)
    assert.ok(
      loaded.some((url) => url.includes('/commander/')),
      'the recorder saw commander (it records)',
    )
    const heavy = loaded.filter((url) => HEAVY.some((re) => re.test(url)))
    assert.deepEqual(heavy, [], `evtctl ${args.join(' ')} loaded them`)
  }
})

test('a command loads its own module, not the others', async () => {
  const loaded = await modulesLoadedBy(['--config', 'migrate', 'state', '--help'])
  const commands = loaded.filter((url) => url.includes('/packages/evtctl/src/commands/')).map((u) => u.split('/').pop())
  assert.deepEqual(commands, ['state.ts'])
})

const NATS = /\/node_modules\/(\.pnpm\/[^/]+\/node_modules\/)?@nats-io\/|\/packages\/bus-nats\//
const PRETTY = /\/node_modules\/(\.pnpm\/[^/]+\/node_modules\/)?pino-pretty\//

test('a command that only reads PostgreSQL loads neither nats.js nor the bus package, nor pino-pretty off a terminal', async () => {
  const db = await createTestDatabase('ep_lazy_nats')
  try {
    const loaded = await modulesLoadedBy(['streams', '--tenant', 'acme'], { EVENTPLANE_DATABASE_URL: db.url })
    assert.ok(
      loaded.some((url) => url.includes('/postgres/')),
      'the recorder saw postgres.js (it records what the command loads)',
    )
    assert.ok(
      loaded.some((url) => /\/pino\//.test(url)),
      'the recorder saw pino, a CommonJS package (it records require too)',
    )
    assert.deepEqual(
      loaded.filter((url) => NATS.test(url) || PRETTY.test(url)),
      [],
      'evtctl streams loaded them',
    )
    // A command that talks to NATS loads them: the recorder would see them.
    const publishing = await modulesLoadedBy(
      ['publish', 'acme/deployment/x', 'create', '--data', '{}'],
      { EVENTPLANE_DATABASE_URL: db.url, EVENTPLANE_NATS_URL: 'nats://127.0.0.1:1' },
      3,
    )
    assert.ok(
      publishing.some((url) => NATS.test(url)),
      'evtctl publish loaded nats.js',
    )
  } finally {
    await db.drop()
  }
})
