import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, before, describe, test } from 'node:test'
import { dieWithParent } from '@eventplane/bus-nats/testing'
import {
  type TestDatabase,
  bulkLoadEvents,
  countLogEvents,
  createTestDatabase,
  vacuumLog,
  within,
} from '@eventplane/store-pg/testing'
import { bundleEvtctl } from '../scripts/cli-bundle.ts'

const EVENTS = 1_000_000
/** Issue 17's bound on the whole evtctl process, as a user runs it: compiled JavaScript under plain node, default flags. */
const MAX_RSS_MB = 150
const PROGRESS = /^verify: \d+ events checked, \d+ events\/s$/

/**
 * Loaded into the measured process with `--require`: at its exit it writes its own peak resident set
 * (getrusage's ru_maxrss, what GNU time's %M reports) to stderr, which is a pipe here, written synchronously.
 */
const MAX_RSS_PRELOAD = `process.on('exit', () => {
  require('node:fs').writeSync(2, 'maxrss_kb=' + process.resourceUsage().maxRSS + '\\n')
})
`

interface Measured {
  code: number | null
  stdout: string
  stderr: string
  maxRssMb: number
}

describe('verify of a large log (issue 17)', () => {
  let db: TestDatabase
  let dir: string
  let evtctl: string

  /** evtctl as compiled JavaScript under plain node (the suite's bundle, or one built here), its peak RSS measured. */
  function verify(args: string[]): Promise<Measured> {
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('EVENTPLANE_')))
    const child = spawn(...dieWithParent(process.execPath, ['--require', join(dir, 'max-rss.cjs'), evtctl, ...args]), {
      env: { ...env, NODE_OPTIONS: '', EVENTPLANE_DATABASE_URL: db.url },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s))
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s))
    const closed = new Promise<number | null>((resolve) => child.once('close', resolve))
    return within(closed, 240_000, `evtctl ${args.join(' ')}`).then(
      (code) => {
        const m = /^maxrss_kb=(\d+)$/m.exec(stderr)
        return { code, stdout, stderr, maxRssMb: m ? Number(m[1]) / 1024 : Number.NaN }
      },
      (e: unknown) => {
        child.kill('SIGKILL')
        throw e
      },
    )
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ep-verify-scale-'))
    await writeFile(join(dir, 'max-rss.cjs'), MAX_RSS_PRELOAD)
    evtctl =
      process.env.EVTCTL_TEST_BIN ??
      (await bundleEvtctl(fileURLToPath(new URL('../packages/evtctl/.test-bin/', import.meta.url))))
    db = await createTestDatabase('ep_verify_scale')
    // 10,000 streams of 100 events in 10 tenants; the row trigger chains each event as it is inserted.
    for (let from = 0; from < EVENTS; from += 100_000) await bulkLoadEvents(db.admin, from, from + 99_999, 10_000)
    await vacuumLog(db.admin)
  })
  after(async () => {
    await db?.drop()
    if (dir) await rm(dir, { recursive: true, force: true })
  })

  test(`a verify of ${EVENTS} events reports them intact, prints progress, and peaks under ${MAX_RSS_MB} MB RSS`, async () => {
    assert.equal(await countLogEvents(db.admin), EVENTS)
    const idle = await verify(['verify', '--tenant', 'nobody', '--json'])
    assert.equal(idle.code, 0, idle.stderr)
    assert.ok(Number.isFinite(idle.maxRssMb), `no peak RSS reported: ${idle.stderr}`)

    const r = await verify(['verify', '--json'])
    assert.equal(r.code, 0, r.stderr)
    const report = JSON.parse(r.stdout)
    assert.equal(report.intact, true)
    assert.equal(report.events, EVENTS)
    const progress = r.stderr.split('\n').filter((l) => PROGRESS.test(l))
    assert.ok(progress.length >= 2, `progress lines: ${r.stderr}`)
    assert.ok(
      r.maxRssMb < MAX_RSS_MB,
      `peak RSS ${r.maxRssMb.toFixed(0)} MB (${idle.maxRssMb.toFixed(0)} MB without a log), over ${MAX_RSS_MB} MB`,
    )
  })
})
