/**
 * The README's first command (through scripts/demo.sh): a fresh database and a
 * project-run nats-server with the tiered credentials, `evtctl migrate`,
 * `evtctl up` (gateway + relay + deployments controller + projections) in the
 * background, intents published for two tenants with `evtctl publish`, the
 * reconciled state, a correlation trace, tenant isolation refused by the
 * servers, `evtctl status`, then a clean shutdown that leaves nothing running.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { createTestDatabase } from '@eventplane/store-pg/testing'
import { startNatsServer } from '@eventplane/bus-nats/testing'

const EVTCTL = fileURLToPath(new URL('../packages/evtctl/bin/evtctl.js', import.meta.url))
const started = Date.now()
// Bold only on a terminal, never with NO_COLOR: piped or logged output carries no escape codes.
const bold = process.stdout.isTTY && !process.env.NO_COLOR ? (s: string) => `\x1b[1m${s}\x1b[0m` : (s: string) => s
const step = (title: string) => console.log(`\n${bold(`== ${title}`)}`)

const db = await createTestDatabase('eventplane_demo', { migrate: false })
const nats = await startNatsServer({ tenants: ['acme', 'globex'] })
const secrets = await mkdtemp(join(tmpdir(), 'eventplane-demo-'))
let up: ChildProcess | undefined
try {
  const passwordFile = async (user: string) => {
    const file = join(secrets, `${user}.pass`)
    await writeFile(file, nats.credentials[user]!.pass, { mode: 0o600 })
    return file
  }
  const base = { EVENTPLANE_DATABASE_URL: db.url, EVENTPLANE_NATS_URL: nats.url }
  const as = async (user: string) => ({
    ...base,
    EVENTPLANE_NATS_USER: user,
    EVENTPLANE_NATS_PASSWORD_FILE: await passwordFile(user),
  })
  const operator = await as('operator')
  const acme = { ...(await as('acme')), EVENTPLANE_TENANT: 'acme' }
  const globex = { ...(await as('globex')), EVENTPLANE_TENANT: 'globex' }

  /** Runs evtctl, echoing the command line and its output; returns stdout. */
  const evtctl = (
    args: string[],
    env: Record<string, string>,
    options: { expectFailure?: boolean; quiet?: boolean } = {},
  ): string => {
    const shown = args.map((a) => (/[\s{}"]/.test(a) ? `'${a}'` : a)).join(' ')
    console.log(`$ ${env.EVENTPLANE_NATS_USER ? `[as ${env.EVENTPLANE_NATS_USER}] ` : ''}evtctl ${shown}`)
    const r = spawnSync(process.execPath, [EVTCTL, ...args], {
      env: { ...process.env, ...env },
      encoding: 'utf8',
      timeout: 30_000,
    })
    if (!options.quiet) process.stdout.write(r.stdout.replace(/^/gm, '  ').replace(/ {2}$/, ''))
    if (r.stderr) process.stdout.write(r.stderr.replace(/^/gm, '  ').replace(/ {2}$/, ''))
    if ((r.status !== 0) !== (options.expectFailure === true)) {
      throw new Error(`evtctl ${args[0]} exited ${r.status}${options.expectFailure ? ' but was expected to fail' : ''}`)
    }
    if (options.expectFailure) console.log(`  (exit ${r.status}, refused as it should be)`)
    return r.stdout
  }

  step(`1. migrate a fresh database (${db.name})`)
  evtctl(['migrate'], base)

  step(`2. start evtctl up (gateway, relay, deployments controller, projections) against nats-server on ${nats.url}`)
  up = spawn(process.execPath, [EVTCTL, 'up'], {
    env: { ...process.env, ...operator },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let upOut = ''
  up.stdout!.on('data', (b: Buffer) => (upOut += b.toString()))
  up.stderr!.on('data', () => {})
  for (let i = 0; !/ready/.test(upOut); i++) {
    if (i > 300 || up.exitCode !== null) throw new Error(`evtctl up did not become ready: ${upOut}`)
    await sleep(50)
  }
  console.log(`  ${upOut.trim()}`)

  step('3. publish intents through the gateway, each tenant with its own NATS credentials')
  const created = JSON.parse(
    evtctl(
      [
        'publish',
        'acme/deployment/web',
        'create',
        '--data',
        '{"image":"nginx:1.27","replicas":2}',
        '--expected-version',
        'no_stream',
        '--json',
      ],
      acme,
    ),
  ) as { correlation_id: string }
  evtctl(['publish', 'acme/deployment/web', 'scale', '--data', '{"replicas":5}'], acme)
  evtctl(['publish', 'acme/deployment/old', 'create', '--data', '{"image":"legacy:0.9","replicas":1}'], acme)
  evtctl(['publish', 'acme/deployment/old', 'delete', '--data', '{}'], acme)
  evtctl(['publish', 'globex/deployment/api', 'create', '--data', '{"image":"api:2.0","replicas":3}'], globex)

  step('4. the reconciled result (deployment_status projection, per tenant)')
  for (let i = 0; ; i++) {
    const state = evtctl(['state', 'deployment_status', '--json'], acme, { quiet: true })
    if (/"deleted":true/.test(state) && /"replicas":5/.test(state)) break
    if (i > 100) throw new Error('the controller did not reconcile in time')
    await sleep(100)
  }
  evtctl(['state', 'deployment_status'], acme)
  evtctl(['state', 'deployment_status'], globex)
  evtctl(['read', 'acme/deployment/web'], acme)

  step(`5. the correlation trace of the first intent (${created.correlation_id})`)
  evtctl(['trace', created.correlation_id, '--show-actor'], acme)

  step('6. tenant isolation: acme may not act on or see globex')
  evtctl(
    ['publish', 'globex/deployment/api', 'scale', '--data', '{"replicas":0}'],
    { ...acme, EVENTPLANE_TENANT: 'globex' },
    { expectFailure: true },
  )
  evtctl(['tail', '--tenant', 'globex', '--count', '1'], { ...acme }, { expectFailure: true })
  evtctl(['state', 'deployment_status'], { ...acme })

  step('7. status: log head, relay lag, projections, gateway')
  evtctl(['status'], operator)
} finally {
  step('8. shut down')
  if (up && up.exitCode === null) {
    up.kill('SIGTERM')
    const exited = new Promise((resolve) => up!.once('exit', resolve))
    if ((await Promise.race([exited, sleep(10_000, 'timeout')])) === 'timeout') up.kill('SIGKILL')
    console.log(`  evtctl up stopped (exit ${up.exitCode ?? up.signalCode})`)
  }
  await nats.stop()
  await db.drop()
  await rm(secrets, { recursive: true, force: true })
  console.log(`  nats-server stopped, database dropped; demo took ${((Date.now() - started) / 1000).toFixed(1)} s`)
}
