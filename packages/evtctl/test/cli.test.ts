import assert from 'node:assert/strict'
import { after, describe, test } from 'node:test'
import { EventplaneError } from '@eventplane/core'
import type { EvtctlErrorCode } from '../src/cli-error.ts'
import { EXIT, exitCodeFor, formatFailure, toEventplaneError } from '../src/exit-codes.ts'
import { createLogger } from '../src/logger.ts'
import { run } from '../src/program.ts'
import { crossTenantRefusal } from '../src/tenant-refusal.ts'
import { UNREACHABLE_PG, failureLine, killAll, runCli } from './helpers.ts'

const COMMANDS = [
  'migrate',
  'publish',
  'read',
  'streams',
  'tail',
  'subscribe',
  'replay',
  'trace',
  'status',
  'import',
  'up',
]

describe('evtctl usage, help and exit codes', () => {
  after(killAll)
  /** Each command's `--help`, run once for the tests that read it (each is an evtctl start). */
  const helps = new Map<string, ReturnType<typeof runCli>>()
  const help = (command: string) => {
    if (!helps.has(command)) helps.set(command, runCli([...command.split(' '), '--help']))
    return helps.get(command)!
  }

  test('--help lists every command, the exit codes and examples, and exits 0', async () => {
    const r = await runCli(['--help'])
    assert.equal(r.code, 0)
    for (const c of COMMANDS) assert.match(r.stdout, new RegExp(`^  ${c}\\b`, 'm'), c)
    assert.match(r.stdout, /Exit codes:/)
    assert.match(r.stdout, /EVENTPLANE_NATS_AUTH_DIR \(tenant, creds and keys\)/)
    assert.match(r.stdout, /Examples:/)
    assert.equal(r.stderr, '')
  })

  test('every command has its own help with an example', async () => {
    for (const c of COMMANDS) {
      const r = await help(c)
      assert.equal(r.code, 0, c)
      assert.match(r.stdout, /Examples:\n\s+\$ .*evtctl /, c)
    }
  })

  test("no help states an option default twice or as an empty list; --log-level names the services' info", async () => {
    const subcommands = ['tenant add', 'tenant rotate', 'creds rotate', 'keys offline', 'keys online']
    const all = [...COMMANDS, 'relay', 'gateway', 'run', 'heads', 'verify', 'export', ...subcommands]
    for (const c of all) {
      const r = await help(c)
      assert.equal(r.code, 0, c)
      const text = r.stdout.replace(/\s+/g, ' ')
      assert.doesNotMatch(text, /\(default [^)]*\) \(default: /, `${c}: a default said twice`)
      assert.doesNotMatch(text, /\(default: \[\]\)/, `${c}: an empty list as the default`)
      assert.match(text, /default: warn; info for up, relay, gateway and run\)/, c)
    }
    const tenantAdd = (await help('tenant add')).stdout.replace(/\s+/g, ' ')
    assert.match(tenantAdd, /default: <tenant>_tail, <tenant>_proj, <tenant>_ctl\)/)
    const gateway = (await help('gateway')).stdout.replace(/\s+/g, ' ')
    assert.match(gateway, /--byte-rate <value> bytes per second per tenant, or unlimited \(default 1 MiB\)/)
  })

  test('a usage error points at the help of the command it names', async () => {
    for (const [args, help] of [
      [['keys', 'offline'], 'evtctl keys offline --help'],
      [['tenant', 'add'], 'evtctl tenant add --help'],
      [['status', '--frob'], 'evtctl status --help'],
      [['frobnicate'], 'evtctl --help'],
    ] as const) {
      const r = await runCli(args)
      assert.equal(r.code, 1, args.join(' '))
      assert.ok(failureLine(r).message.endsWith(`(see ${help})`), `${args.join(' ')}: ${r.stderr}`)
    }
  })

  test('no command prints the help on stderr and exits 1', async () => {
    const r = await runCli([])
    assert.equal(r.code, 1)
    assert.match(r.stderr, /Usage: evtctl/)
  })

  test('unknown commands, options and log levels are one-line usage errors', async () => {
    for (const args of [['frobnicate'], ['status', '--frob'], ['--log-level', 'loud', 'status'], ['read']]) {
      const r = await runCli(args)
      assert.equal(r.code, 1, args.join(' '))
      assert.equal(failureLine(r).code, 'cli.bad_usage', args.join(' '))
    }
  })

  test('EVENTPLANE_LOG_LEVEL sets the level unless --log-level is given; a bad one is refused naming the levels', async () => {
    const status = (env: Record<string, string>, ...flags: string[]) =>
      runCli([...flags, 'status', '--no-nats'], { env: { EVENTPLANE_DATABASE_URL: UNREACHABLE_PG, ...env } })
    const bad = await status({ EVENTPLANE_LOG_LEVEL: 'loud' })
    assert.equal(bad.code, 1, bad.stderr)
    assert.equal(failureLine(bad).code, 'cli.config')
    assert.match(failureLine(bad).message, /^EVENTPLANE_LOG_LEVEL must be one of .*debug/)
    const flagWins = await status({ EVENTPLANE_LOG_LEVEL: 'loud' }, '--log-level', 'warn')
    assert.equal(failureLine(flagWins).code, 'store.unavailable', flagWins.stderr)
    const debug = await status({ EVENTPLANE_LOG_LEVEL: 'debug' })
    assert.equal(debug.code, 3, debug.stderr)
    assert.match(debug.stderr, /connecting to PostgreSQL/)
  })

  test('an integer option below its minimum, negative or not a whole number is a usage error before any connection', async () => {
    // The servers named are closed ports: a value let through would fail on the connection instead (exit 3).
    const env = {
      EVENTPLANE_DATABASE_URL: 'postgres://postgres@127.0.0.1:1/none',
      EVENTPLANE_NATS_URL: 'nats://127.0.0.1:1',
    }
    for (const [args, line] of [
      [['streams', '--tenant', 'acme', '--limit', '0'], '--limit must be an integer >= 1'],
      [['streams', '--tenant', 'acme', '--limit', '1.5'], '--limit must be an integer >= 1'],
      [['read', 'acme/account/a1', '--limit', '-1'], '--limit must be an integer >= 0'],
      [['publish', 'acme/account/a1', 'opened', '--data', '{}', '--timeout', '0'], '--timeout must be an integer >= 1'],
    ] as const) {
      let err = ''
      const io = { stdout: { write: (_s: string) => true }, stderr: { write: (s: string) => (err += s) }, env }
      assert.equal(await run([...args], io), EXIT.usage, args.join(' '))
      assert.match(err, new RegExp(`${line.replace(/[.]/g, '\\.')}`), args.join(' '))
    }
  })

  test('a stream of one part is a usage error saying what a stream is, before any connection', async () => {
    const env = {
      EVENTPLANE_DATABASE_URL: 'postgres://postgres@127.0.0.1:1/none',
      EVENTPLANE_NATS_URL: 'nats://127.0.0.1:1',
    }
    for (const args of [
      ['read', 'acme'],
      ['publish', 'acme', 'opened', '--data', '{}'],
    ]) {
      let err = ''
      const io = { stdout: { write: (_s: string) => true }, stderr: { write: (s: string) => (err += s) }, env }
      assert.equal(await run(args, io), EXIT.usage, args.join(' '))
      assert.equal(err, 'evtctl: cli.bad_usage: stream must look like tenant/category/id, got "acme"\n', args.join(' '))
    }
  })

  test('--version prints the version', async () => {
    const r = await runCli(['--version'])
    assert.equal(r.code, 0)
    assert.match(r.stdout, /^\d+\.\d+\.\d+\n$/)
  })
})

describe('exit code table', () => {
  const cases: [EvtctlErrorCode, number][] = [
    ['core.invalid_name', EXIT.usage],
    ['core.invalid_data', EXIT.usage],
    ['core.schema_violation', EXIT.usage],
    ['cli.bad_usage', EXIT.usage],
    ['cli.config', EXIT.usage],
    ['bus.config', EXIT.usage],
    ['bus.jwt_not_applied', EXIT.usage],
    ['runtime.unknown_projection', EXIT.usage],
    ['store.wrong_expected_version', EXIT.conflict],
    ['store.idempotency_conflict', EXIT.conflict],
    ['store.chain_broken', EXIT.conflict],
    ['store.chain_unverifiable', EXIT.unavailable],
    ['bus.rate_limited', EXIT.unavailable],
    ['bus.unknown_tenant', EXIT.usage],
    ['bus.stream_mismatch', EXIT.usage],
    ['store.unavailable', EXIT.unavailable],
    ['bus.unavailable', EXIT.unavailable],
    ['bus.timeout', EXIT.unavailable],
    ['store.auth_failed', EXIT.denied],
    ['bus.auth_failed', EXIT.denied],
    ['store.forbidden', EXIT.denied],
    ['bus.forbidden', EXIT.denied],
    ['runtime.handler_failed', EXIT.internal],
    ['cli.internal', EXIT.internal],
    ['cli.interrupted', EXIT.interrupted],
  ]
  test('each stable code maps to its documented exit code', () => {
    for (const [code, exit] of cases)
      assert.equal(exitCodeFor(new EventplaneError<EvtctlErrorCode>(code, 'x')), exit, code)
    assert.deepEqual([EXIT.ok, EXIT.usage, EXIT.conflict, EXIT.unavailable, EXIT.denied], [0, 1, 2, 3, 4])
  })

  test('untyped errors are classified by code, never by message', async () => {
    assert.equal((await toEventplaneError(Object.assign(new Error('x'), { code: '28P01' }))).code, 'store.auth_failed')
    assert.equal(
      (await toEventplaneError(Object.assign(new Error('x'), { code: 'ECONNREFUSED' }))).code,
      'store.unavailable',
    )
    assert.equal((await toEventplaneError(new Error('connection refused'))).code, 'cli.internal')
    // An abort (a signal stopping a command mid-request) is an interruption, exit 130: not a bug (exit 70).
    const aborted = await toEventplaneError(
      Object.assign(new Error('This operation was aborted'), { name: 'AbortError' }),
    )
    assert.equal(aborted.code, 'cli.interrupted')
    assert.equal(exitCodeFor(aborted), EXIT.interrupted)
  })

  test('run() returns the code and writes one line instead of exiting', async () => {
    let out = ''
    let err = ''
    const io = { stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s) }, env: {} }
    assert.equal(await run(['read', 'a.b/c/d'], io), EXIT.usage)
    assert.equal(out, '')
    assert.match(err, /^evtctl: core\.invalid_name: tenant "a\.b" may only contain .*\n$/)
  })

  test('a file the user named that cannot be read is bad usage (exit 1, one line), not an internal error', async () => {
    let err = ''
    const io = { stdout: { write: (_s: string) => true }, stderr: { write: (s: string) => (err += s) }, env: {} }
    const missing = '/nonexistent-evtctl-test/acme.ndjson'
    assert.equal(await run(['import', missing, '--tenant', 'acme'], io), EXIT.usage)
    assert.match(err, /^evtctl: cli\.bad_usage: .*nonexistent-evtctl-test.*\n$/)
    for (const code of ['ENOENT', 'EACCES', 'EISDIR'])
      assert.equal(
        (await toEventplaneError(Object.assign(new Error(`${code}: x`), { code }))).code,
        'cli.bad_usage',
        code,
      )
  })

  test("a refusal is called cross-tenant only for another tenant's creds, never a service user's or its own", () => {
    const refused = new EventplaneError<EvtctlErrorCode>('bus.forbidden', 'Permissions Violation for Publish')
    for (const user of ['acme', 'operator', 'relay', 'gateway', 'controller', 'system', undefined])
      assert.equal(crossTenantRefusal(refused, 'publish', 'acme', user), undefined, String(user))
    const cross = crossTenantRefusal(refused, 'tail', 'acme', 'globex')
    assert.equal(cross?.code, 'bus.forbidden')
    assert.match(cross?.message ?? '', /^tail for tenant acme refused: the NATS creds are user globex's/)
  })

  test('a failure is one stderr line: newlines in its message are folded', () => {
    assert.equal(
      formatFailure(
        new EventplaneError<EvtctlErrorCode>('core.schema_violation', 'create@1:\n  /replicas: Expected number\n'),
      ),
      'evtctl: core.schema_violation: create@1: /replicas: Expected number \n',
    )
  })
})

describe('logs', () => {
  test('event data and caused_by are redacted; ids, types and positions stay', () => {
    let out = ''
    const log = createLogger('info', { write: (s: string) => (out += s) })
    log.info(
      { event_id: 'e1', type: 'created', position: '42', data: { email: 'a@b.c' }, caused_by: 'user:alice' },
      'appended',
    )
    log.info({ event: { event_id: 'e2', data: { ssn: '1' }, caused_by: 'user:bob' } }, 'nested')
    assert.doesNotMatch(out, /a@b\.c|alice|ssn|bob/)
    assert.match(out, /"event_id":"e1".*"type":"created".*"position":"42"/)
    assert.match(out, /"data":"\[redacted\]"/)
  })

  test('a field another party chose cannot drive the terminal: C1, DEL and bidi controls escaped, JSON and pretty', () => {
    const chosen = 'eventplane-api.submit.acme\u009b31m\u202e.x\u007f'
    let out = ''
    createLogger('info', { write: (s: string) => (out += s) }).warn({ subject: chosen }, 'refused')
    assert.doesNotMatch(out, /[\u007f-\u009f\u202e]/)
    assert.equal((JSON.parse(out) as { subject: string }).subject, chosen, 'the same JSON value')
    let pretty = ''
    createLogger('info', { write: (s: string) => (pretty += s), isTTY: true }, { NO_COLOR: '1' }).warn(
      { subject: chosen },
      `refused: ${chosen}\u001b[2J`,
    )
    // NO_COLOR: pino-pretty writes no ESC of its own here, so none may appear at all.
    // biome-ignore lint/suspicious/noControlCharactersInRegex: ESC is what must not appear
    assert.doesNotMatch(pretty, /[\u001b\u007f-\u009f\u202e]/)
    assert.ok(pretty.includes(String.raw`acme\u009b31m\u202e.x\u007f`), pretty)
    assert.ok(pretty.includes(String.raw`.x\u007f\u001b[2J`), pretty)
  })

  test('a password or pass field is redacted at the top level and one level down', () => {
    let out = ''
    const log = createLogger('info', { write: (s: string) => (out += s) })
    log.info({ user: 'relay', password: 'hunter2-top', pass: 'hunter2-pass' }, 'top')
    log.info({ nats: { user: 'relay', password: 'hunter2-nested', pass: 'hunter2-nested-pass' } }, 'nested')
    assert.doesNotMatch(out, /hunter2/)
    assert.match(out, /"user":"relay","password":"\[redacted\]","pass":"\[redacted\]"/)
  })
})
