import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { after, before, describe, test } from 'node:test'
import { bulkLoadEvents, countLogEvents, createTestDatabase, type TestDatabase } from '@eventplane/store-pg/testing'

const EVTCTL = fileURLToPath(new URL('../../packages/evtctl/bin/evtctl.js', import.meta.url))
const EVENTS = 1_000_000
/**
 * The CLI's own peak without a log to walk (tsx compiling every command's
 * imports: ~120 MB here) is measured in the same run; verify may add at most
 * this much on top for a million events. Collecting the rows instead of
 * streaming them would add several hundred MB.
 */
const MAX_GROWTH_MB = 80

/** Runs evtctl under GNU time: its exit code, output, and its peak resident set in MB. */
function evtctlMeasured(args: string[], env: Record<string, string>) {
  return new Promise<{ code: number | null; stdout: string; stderr: string; maxRssMb: number }>((resolve, reject) => {
    const child = spawn('/usr/bin/time', ['-f', 'maxrss_kb=%M', process.execPath, EVTCTL, ...args], {
      env: { ...process.env, ...env },
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    child.on('error', reject)
    child.on('close', (code) => {
      const m = /maxrss_kb=(\d+)/.exec(stderr)
      resolve({ code, stdout, stderr, maxRssMb: m ? Number(m[1]) / 1024 : Number.NaN })
    })
  })
}

describe('verify of a large log', () => {
  let db: TestDatabase

  before(async () => {
    db = await createTestDatabase('ep_chain_scale')
    for (let from = 0; from < EVENTS; from += 100_000) await bulkLoadEvents(db.admin, from, from + 99_999, 10_000)
    await db.admin`vacuum analyze eventplane.events`
  })
  after(() => db?.drop())

  test(`a verify of ${EVENTS} events prints progress and adds under ${MAX_GROWTH_MB} MB to the CLI's own peak`, async () => {
    assert.equal(await countLogEvents(db.admin), EVENTS)
    const idle = await evtctlMeasured(['verify', '--tenant', 'nobody', '--json'], { EVENTPLANE_DATABASE_URL: db.url })
    assert.equal(idle.code, 0, idle.stderr)
    const started = performance.now()
    const r = await evtctlMeasured(['verify', '--json'], { EVENTPLANE_DATABASE_URL: db.url })
    const seconds = (performance.now() - started) / 1000
    assert.equal(r.code, 0, r.stderr)
    const report = JSON.parse(r.stdout)
    assert.equal(report.intact, true)
    assert.equal(report.events, EVENTS)
    const progress = r.stderr.split('\n').filter((l) => /^verify: \d+ events checked, \d+ events\/s$/.test(l))
    assert.ok(progress.length >= 2, `progress lines: ${r.stderr}`)
    assert.ok(
      r.maxRssMb - idle.maxRssMb < MAX_GROWTH_MB,
      `peak RSS ${r.maxRssMb.toFixed(0)} MB, ${idle.maxRssMb.toFixed(0)} MB without a log`,
    )
    console.log(
      `verify: ${EVENTS} events in ${seconds.toFixed(1)} s (${Math.round(EVENTS / seconds)}/s), ` +
        `peak RSS ${r.maxRssMb.toFixed(0)} MB (${idle.maxRssMb.toFixed(0)} MB without a log), ${progress.length} progress lines`,
    )
  })
})
