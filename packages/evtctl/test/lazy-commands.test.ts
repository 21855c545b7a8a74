import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { buildFullProgram, run } from '../src/index.ts'
import type { CliIo } from '../src/io.ts'

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

/** The module URLs `evtctl <args>` resolves, run from the sources as the workspace runs it. */
async function modulesLoadedBy(args: string[]): Promise<string[]> {
  const file = join(dir, `${args.join('_').replace(/\W/g, '')}.txt`)
  const child = spawnSync(process.execPath, ['--import', 'tsx', '--import', RECORDER, MAIN, ...args], {
    env: { ...process.env, RECORD_LOADS_FILE: file },
    encoding: 'utf8',
  })
  assert.equal(child.status, 0, child.stderr)
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
