import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { after, before, describe, test } from 'node:test'
import { bulkLoadEvents, countLogEvents, createTestDatabase, type TestDatabase } from '@eventplane/store-pg/testing'

const EVTCTL = fileURLToPath(new URL('../packages/evtctl/bin/evtctl.js', import.meta.url))
const EVENTS = 1_000_000
const MAX_RSS_MB = 150

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

  test(`a verify of ${EVENTS} events prints progress and stays under ${MAX_RSS_MB} MB`, async () => {
    assert.equal(await countLogEvents(db.admin), EVENTS)
    const started = performance.now()
    const r = await evtctlMeasured(['verify', '--json'], { EVENTPLANE_DATABASE_URL: db.url })
    const seconds = (performance.now() - started) / 1000
    assert.equal(r.code, 0, r.stderr)
    const report = JSON.parse(r.stdout)
    assert.equal(report.intact, true)
    assert.equal(report.events, EVENTS)
    const progress = r.stderr.split('\n').filter((l) => /^verify: \d+ events checked, \d+ events\/s$/.test(l))
    assert.ok(progress.length >= 2, `progress lines: ${r.stderr}`)
    assert.ok(r.maxRssMb < MAX_RSS_MB, `peak RSS ${r.maxRssMb.toFixed(0)} MB`)
    console.log(
      `verify: ${EVENTS} events in ${seconds.toFixed(1)} s (${Math.round(EVENTS / seconds)}/s), ` +
        `peak RSS ${r.maxRssMb.toFixed(0)} MB, ${progress.length} progress lines`,
    )
  })
})
