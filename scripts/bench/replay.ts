/**
 * Replay benchmark: rebuilding a reducer projection vs a raw ordered read of
 * the same rows, in one run, alternating rounds.
 *
 *   pnpm bench:replay [--events 1000000] [--rounds 5] [--streams 10000]
 *
 * Creates its own database (EVENTPLANE_DATABASE_URL's server), loads the
 * events with one INSERT … SELECT generate_series per chunk as the superuser,
 * and drops the database at the end (also on Ctrl-C or SIGTERM). Targets (issue 15): rebuild ≥ 0.8× raw read, peak RSS < 150 MB for
 * the rebuild in its own process (bundled to JavaScript with esbuild and run by plain node). Each rebuild is
 * a complete one: a new shadow generation, swapped in at the end, the previous one deleted.
 */
import { parseArgs } from 'node:util'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'
import { bulkLoadEvents, rawGapSafeLog, vacuumLog } from '@eventplane/store-pg/testing'
import { PROJECTOR_ROLE, projectionDigest, rebuildProjection } from '@eventplane/runtime'
import { perStream } from './replay-projection.ts'
import { benchChild, benchDatabase, median } from './lib.ts'

const { values } = parseArgs({
  // `pnpm bench:replay -- --rounds 3` passes the `--` on: without this filter parseArgs took the rest as positionals.
  args: process.argv.slice(2).filter((a) => a !== '--'),
  options: {
    events: { type: 'string', default: '1000000' },
    rounds: { type: 'string', default: '5' },
    streams: { type: 'string', default: '10000' },
  },
})
const EVENTS = Number(values.events)
const ROUNDS = Number(values.rounds)
const STREAMS = Math.max(10, Math.round(Number(values.streams) / 10) * 10)
const CHUNK = 100_000
const TARGET_RATIO = 0.8
const TARGET_RSS_MB = 150

const peakRssMb = (): number => process.resourceUsage().maxRSS / 1024
const fmt = (n: number): string => Math.round(n).toLocaleString('en-US')

/** Bundles replay-child.ts to one JavaScript file and runs it with plain node (no TypeScript loader). */
async function bundleChild(): Promise<{ file: string; cleanup(): void }> {
  const dir = mkdtempSync(join(tmpdir(), 'ep-bench-replay-'))
  const file = join(dir, 'replay-child.mjs')
  await build({
    entryPoints: [fileURLToPath(new URL('./replay-child.ts', import.meta.url))],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    outfile: file,
    logLevel: 'error',
    // CommonJS dependencies (nats.js's tweetnacl) require node built-ins.
    banner: { js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);" },
  })
  return { file, cleanup: () => rmSync(dir, { recursive: true, force: true }) }
}

let childFile = ''

/** What the rebuild child prints (one JSON line). */
type ChildResult = { events: number; rate: number; maxRssMb: number; idleRssMb: number }

/**
 * Runs the rebuild child with `nodeFlags` against `url`; throws with its stderr when it fails. Not spawnSync:
 * this process must stay able to handle a SIGINT/SIGTERM meanwhile (stop the child, drop the database).
 */
async function runChild(url: string, nodeFlags: string[] = []): Promise<ChildResult> {
  const child = benchChild(
    spawn(process.execPath, [...nodeFlags, childFile], { env: { ...process.env, EVENTPLANE_BENCH_URL: url } }),
  )
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d))
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d))
  const [status] = (await once(child, 'close')) as [number | null]
  if (status !== 0) throw new Error(`rebuild child failed: ${stderr}`)
  return JSON.parse(stdout) as ChildResult
}

async function main(): Promise<number> {
  const bundle = await bundleChild()
  childFile = bundle.file
  try {
    return await measure()
  } finally {
    bundle.cleanup()
  }
}

async function measure(): Promise<number> {
  const db = await benchDatabase('replay')
  try {
    process.stderr.write(`loading ${fmt(EVENTS)} events over ${fmt(STREAMS)} streams…\n`)
    const loadStart = performance.now()
    for (let from = 1; from <= EVENTS; from += CHUNK) {
      const to = Math.min(EVENTS, from + CHUNK - 1)
      await bulkLoadEvents(db.admin, from, to, STREAMS)
    }
    await vacuumLog(db.admin)
    process.stderr.write(`loaded in ${((performance.now() - loadStart) / 1000).toFixed(1)} s\n`)

    const sql = db.connect(PROJECTOR_ROLE, 4)
    const raw = async (): Promise<number> => {
      const start = performance.now()
      let rows = 0
      for await (const batch of rawGapSafeLog(sql, 2000)) rows += batch.length
      if (rows !== EVENTS) throw new Error(`raw read saw ${rows} rows, expected ${EVENTS}`)
      return rows / ((performance.now() - start) / 1000)
    }
    const rebuild = async (): Promise<{ rate: number }> => {
      const r = await rebuildProjection({ projection: perStream, sql, digest: false, restart: true })
      if (r.events !== EVENTS) throw new Error(`rebuild saw ${r.events} events, expected ${EVENTS}`)
      return { rate: r.rate }
    }

    const ratios: number[] = []
    const rawRates: number[] = []
    const rebuildRates: number[] = []
    for (let round = 1; round <= ROUNDS; round++) {
      const rawRate = await raw()
      const { rate } = await rebuild()
      rawRates.push(rawRate)
      rebuildRates.push(rate)
      ratios.push(rate / rawRate)
      process.stderr.write(
        `  round ${round}/${ROUNDS}: raw ${fmt(rawRate)} ev/s, rebuild ${fmt(rate)} ev/s, ratio ${(rate / rawRate).toFixed(2)}\n`,
      )
    }
    const digestStart = performance.now()
    const digest = await projectionDigest(sql, perStream)
    const digestSeconds = (performance.now() - digestStart) / 1000

    const ratio = median(ratios)
    // The peak RSS of a rebuild on its own, in a fresh process: the raw reads
    // above inflate this process's high-water mark and are not the rebuild's.
    const isolated = await runChild(db.roleUrl(PROJECTOR_ROLE))
    // The same with V8's young generation capped: most of the rest is garbage awaiting a scavenge.
    const smallSemi = await runChild(db.roleUrl(PROJECTOR_ROLE), ['--max-semi-space-size=2'])
    const rss = isolated.maxRssMb
    console.log(`replay benchmark: ${fmt(EVENTS)} events, ${fmt(STREAMS)} streams, ${ROUNDS} rounds`)
    console.log(`  raw ordered read     median ${fmt(median(rawRates))} events/s`)
    console.log(`  reducer rebuild      median ${fmt(median(rebuildRates))} events/s`)
    console.log(
      `  ratio rebuild/raw    median ${ratio.toFixed(2)} (target >= ${TARGET_RATIO})  ${ratio >= TARGET_RATIO ? 'ok' : 'MISSED'}`,
    )
    console.log(
      `  peak RSS (rebuild)   ${rss.toFixed(0)} MB in its own process (target < ${TARGET_RSS_MB})  ${rss < TARGET_RSS_MB ? 'ok' : 'MISSED'}; that process idles at ${isolated.idleRssMb.toFixed(0)} MB, this one peaked at ${peakRssMb().toFixed(0)} MB`,
    )
    console.log(
      `  peak RSS, node --max-semi-space-size=2: ${smallSemi.maxRssMb.toFixed(0)} MB (${fmt(smallSemi.rate)} events/s; default flags ${fmt(isolated.rate)} events/s)`,
    )
    console.log(
      `  output digest        ${digest.sha256.slice(0, 16)}… over ${fmt(digest.rows)} rows in ${digestSeconds.toFixed(1)} s`,
    )
    return ratio >= TARGET_RATIO && rss < TARGET_RSS_MB ? 0 : 1
  } finally {
    await db.drop()
  }
}

main().then(
  (code) => {
    process.exitCode = code
  },
  (e: unknown) => {
    console.error(`bench:replay failed: ${e instanceof Error ? e.message : String(e)}`)
    process.exitCode = 1
  },
)
