/**
 * The README's first command (through scripts/demo.sh): a fresh database and a
 * project-run nats-server in the account model, `evtctl migrate`, tenants
 * `acme` and `globex` added live with `evtctl tenant add`, `evtctl up`
 * (gateway + relay + deployments controller + projections) in the background,
 * intents published by each tenant with its own creds, the reconciled state, a
 * correlation trace, tenant isolation refused by the server, a tenant revoked
 * live, `evtctl status`, then a clean shutdown that leaves nothing running.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { copyFile, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { createTestDatabase } from '@eventplane/store-pg/testing'
import { startNatsServer } from '@eventplane/bus-nats/testing'
import { bundleEvtctl } from './cli-bundle.ts'

const started = Date.now()
/**
 * evtctl as an installed one runs: compiled ahead of time (scripts/cli-bundle.ts, from the sources, fresh each
 * run), not through tsx's loader (bin/evtctl.js), which costs each of the demo's ~20 evtctl runs about 0.6 s of
 * CPU more. A directory of this run's own, so that two demos never write over each other's.
 */
const bundleDir = fileURLToPath(new URL(`../packages/evtctl/.demo-bin/${process.pid}/`, import.meta.url))
const EVTCTL = await bundleEvtctl(bundleDir)
// Bold only on a terminal, never with NO_COLOR: piped or logged output carries no escape codes.
const bold = process.stdout.isTTY && !process.env.NO_COLOR ? (s: string) => `\x1b[1m${s}\x1b[0m` : (s: string) => s
const step = (title: string) => console.log(`\n${bold(`== ${title}`)}`)

const db = await createTestDatabase('eventplane_demo', { migrate: false })
// No tenants yet: the server starts with the system side only (operator, system and log accounts).
const nats = await startNatsServer()
/** Where each tenant keeps the creds file it was handed. */
const handedOut = await mkdtemp(join(tmpdir(), 'eventplane-demo-'))
let up: ChildProcess | undefined
/** The example domain, loaded by evtctl like any user's domain. */
const DOMAIN = ['--domain', '@eventplane/example-deployments']
try {
  const base = { EVENTPLANE_DATABASE_URL: db.url, EVENTPLANE_NATS_URL: nats.url }
  const operator = { ...base, EVENTPLANE_NATS_CREDS: nats.credentials.operator!.creds, DEMO_AS: 'operator' }
  const admin = { ...base, EVENTPLANE_NATS_AUTH_DIR: nats.authDir!, DEMO_AS: 'operator, tenant admin' }

  /** Runs evtctl, echoing the command line and its output (`quiet`: neither, as for a poll); returns stdout. */
  const evtctl = (
    args: string[],
    env: Record<string, string>,
    options: { expectFailure?: boolean; quiet?: boolean } = {},
  ): string => {
    const shown = args.map((a) => (/[\s{}"]/.test(a) ? `'${a}'` : a)).join(' ')
    if (!options.quiet) console.log(`$ ${env.DEMO_AS ? `[as ${env.DEMO_AS}] ` : ''}evtctl ${shown}`)
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

  step('2. add tenants acme and globex live: one NATS account each, creds written with mode 0600')
  const as: Record<string, Record<string, string>> = {}
  for (const tenant of ['acme', 'globex']) {
    evtctl(['tenant', 'add', tenant], admin)
    const creds = join(handedOut, `${tenant}.creds`)
    await copyFile(join(nats.authDir!, 'tenants', `${tenant}.creds`), creds)
    as[tenant] = { ...base, EVENTPLANE_NATS_CREDS: creds, EVENTPLANE_TENANT: tenant, DEMO_AS: tenant }
  }
  evtctl(['tenant', 'list'], admin)
  const acme = as.acme!
  const globex = as.globex!

  step(
    `3. start evtctl up --domain ${DOMAIN[1]} (gateway, relay, deployments controller, projections) against nats-server on ${nats.url}`,
  )
  up = spawn(process.execPath, [EVTCTL, 'up', ...DOMAIN], {
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

  step('4. publish intents through the gateway, each tenant with its own NATS credentials')
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

  step('5. the reconciled result (deployment_status projection, per tenant)')
  for (let i = 0; ; i++) {
    const state = evtctl(['state', 'deployment_status', ...DOMAIN, '--json'], acme, { quiet: true })
    if (/"deleted":true/.test(state) && /"replicas":5/.test(state)) break
    if (i > 100) throw new Error('the controller did not reconcile in time')
    await sleep(100)
  }
  evtctl(['state', 'deployment_status', ...DOMAIN], acme)
  evtctl(['state', 'deployment_status', ...DOMAIN], globex)
  evtctl(['read', 'acme/deployment/web'], acme)

  step(`6. the correlation trace of the first intent (${created.correlation_id})`)
  evtctl(['trace', created.correlation_id, '--show-actor'], acme)

  step('7. tenant isolation: acme may not act on or see globex')
  evtctl(
    ['publish', 'globex/deployment/api', 'scale', '--data', '{"replicas":0}'],
    { ...acme, EVENTPLANE_TENANT: 'globex' },
    { expectFailure: true },
  )
  evtctl(['tail', '--tenant', 'globex', '--count', '1'], { ...acme }, { expectFailure: true })
  evtctl(['state', 'deployment_status', ...DOMAIN], { ...acme })

  step('8. revoke globex live: its creds are refused from now on, acme is untouched')
  evtctl(['tenant', 'revoke', 'globex'], admin)
  evtctl(['publish', 'globex/deployment/api', 'scale', '--data', '{"replicas":1}'], globex, { expectFailure: true })
  evtctl(['publish', 'acme/deployment/web', 'scale', '--data', '{"replicas":3}'], acme)

  step('9. status: log head, relay lag, projections, gateway')
  evtctl(['status'], operator)
} finally {
  step('10. shut down')
  if (up && up.exitCode === null) {
    up.kill('SIGTERM')
    const exited = new Promise((resolve) => up!.once('exit', resolve))
    if ((await Promise.race([exited, sleep(10_000, 'timeout')])) === 'timeout') up.kill('SIGKILL')
    console.log(`  evtctl up stopped (exit ${up.exitCode ?? up.signalCode})`)
  }
  await nats.stop()
  await db.drop()
  await rm(handedOut, { recursive: true, force: true })
  await rm(bundleDir, { recursive: true, force: true })
  console.log(`  nats-server stopped, database dropped; demo took ${((Date.now() - started) / 1000).toFixed(1)} s`)
}
