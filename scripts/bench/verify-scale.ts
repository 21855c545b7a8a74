import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { bulkLoadEvents, countLogEvents, type TestDatabase, vacuumLog } from '@eventplane/store-pg/testing'
import { buildAndPack, freshProject } from '../pack.ts'
import { benchChild, benchDatabase } from './lib.ts'

const EVENTS = 1_000_000
/**
 * The bound on the whole evtctl process, as a user runs it: the built CLI (`dist/`, installed from the
 * packed tarballs outside the workspace) under plain node with default flags. Under tsx the same run peaked at
 * 178 MB, tsx itself taking about 120 MB.
 */
const MAX_RSS_MB = 150
/** Runs evtctl under GNU time: its exit code, output, and its peak resident set in MB. */
function evtctlMeasured(evtctl: string, args: string[], env: Record<string, string>) {
  return new Promise<{ code: number | null; stdout: string; stderr: string; maxRssMb: number; cpuSeconds: number }>(
    (resolve, reject) => {
      const child = benchChild(
        spawn('/usr/bin/time', ['-f', 'maxrss_kb=%M cpu_s=%U+%S', process.execPath, evtctl, ...args], {
          env: { ...process.env, ...env },
        }),
      )
      let stdout = ''
      let stderr = ''
      child.stdout.on('data', (d) => (stdout += d))
      child.stderr.on('data', (d) => (stderr += d))
      child.on('error', reject)
      child.on('close', (code) => {
        const m = /maxrss_kb=(\d+) cpu_s=([\d.]+)\+([\d.]+)/.exec(stderr)
        resolve({
          code,
          stdout,
          stderr,
          maxRssMb: m ? Number(m[1]) / 1024 : Number.NaN,
          cpuSeconds: m ? Number(m[2]) + Number(m[3]) : Number.NaN,
        })
      })
    },
  )
}

describe('verify of a large log', () => {
  let db: TestDatabase
  let packs: string
  let project: string
  let evtctl: string

  before(async () => {
    packs = await mkdtemp(join(tmpdir(), 'eventplane-packs-'))
    project = await freshProject(await buildAndPack(packs))
    evtctl = join(project, 'node_modules/@eventplane/evtctl/dist/main.js')
    db = await benchDatabase('chain_scale')
    for (let from = 0; from < EVENTS; from += 100_000) await bulkLoadEvents(db.admin, from, from + 99_999, 10_000)
    await vacuumLog(db.admin)
  })
  after(async () => {
    await db?.drop()
    for (const dir of [packs, project]) if (dir) await rm(dir, { recursive: true, force: true })
  })

  test(`a verify of ${EVENTS} events by the built CLI prints progress and peaks under ${MAX_RSS_MB} MB RSS`, async () => {
    assert.equal(await countLogEvents(db.admin), EVENTS)
    const idle = await evtctlMeasured(evtctl, ['verify', '--tenant', 'nobody', '--json'], {
      EVENTPLANE_DATABASE_URL: db.url,
    })
    assert.equal(idle.code, 0, idle.stderr)
    const started = performance.now()
    const r = await evtctlMeasured(evtctl, ['verify', '--json'], { EVENTPLANE_DATABASE_URL: db.url })
    const seconds = (performance.now() - started) / 1000
    assert.equal(r.code, 0, r.stderr)
    const report = JSON.parse(r.stdout)
    assert.equal(report.intact, true)
    assert.equal(report.events, EVENTS)
    const progress = r.stderr.split('\n').filter((l) => /^verify: \d+ events checked, \d+ events\/s$/.test(l))
    assert.ok(progress.length >= 2, `progress lines: ${r.stderr}`)
    assert.ok(
      r.maxRssMb < MAX_RSS_MB,
      `peak RSS ${r.maxRssMb.toFixed(0)} MB, ${idle.maxRssMb.toFixed(0)} MB without a log`,
    )
    // Wall time includes PostgreSQL and whatever else runs; the CLI's own CPU time does not.
    console.log(
      `verify: ${EVENTS} events in ${seconds.toFixed(1)} s wall (${Math.round(EVENTS / seconds)}/s), ` +
        `evtctl CPU ${r.cpuSeconds.toFixed(1)} s (${Math.round(EVENTS / r.cpuSeconds)} events per CPU second), ` +
        `peak RSS ${r.maxRssMb.toFixed(0)} MB (${idle.maxRssMb.toFixed(0)} MB without a log), ` +
        `${progress.length} progress lines`,
    )
  })
})
