/**
 * pnpm tsx scripts/bench/append-client-cpu.ts [--ops 2000] [--block 25] [--rounds 7] [--base DIR]
 * [--profile file.cpuprofile] — this process's CPU (process.cpuUsage) per one-event append including the
 * EventFactory that builds the event: `factory.intent` + `PgEventStore.append` to one of four existing streams,
 * awaited one by one on a one-connection pool. With `--base DIR` (another checkout of eventplane, its packages
 * installed), the same loop through DIR's EventFactory and PgEventStore on a connection of its own, in
 * interleaved blocks of `--block` appends, the order swapped every block (drift in the machine's load falls on
 * both alike); per round and the medians of the rounds, and the paired ratio. `--prebuilt`: the events are
 * made before the timed loop (the append alone). `--notify`: this tree's store with its post-commit NOTIFY
 * (notifyAppends, the default; off otherwise): with `--base .`, what the NOTIFY costs the client. `--profile` (without `--base`): the rounds after the first.
 */
import * as core from '@eventplane/core'
import * as store from '@eventplane/store-pg'
import { writeFileSync } from 'node:fs'
import { Session } from 'node:inspector/promises'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { BENCH_DATA, argString, argValue, median, benchDatabase } from './lib.ts'

const OPS = argValue('ops', 2000)
const BLOCK = argValue('block', 25)
const ROUNDS = argValue('rounds', 7)
const base = argString('base')
const profile = argString('profile')
const prebuilt = process.argv.includes('--prebuilt')
if (profile !== undefined && base !== undefined) throw new Error('--profile takes no --base: it records the whole loop')
const notify = process.argv.includes('--notify')

type Core = typeof core
type Store = typeof store
type Op = (i: number) => Promise<unknown>

const db = await benchDatabase('append_client')
try {
  const variant = (c: Core, s: Store, notifyAppends = false): { op: Op; make: (prefix: string) => void } => {
    const sql = db.connect(s.ROLES.intentWriter, 1)
    const st = new s.PgEventStore(sql, { notifyAppends })
    const factory = c.EventFactory.forTenant('bench', { causedBy: 'user:bench' })
    let streams = [0, 1, 2, 3].map((i) => ({ tenant: 'bench', category: 'deployment', id: `s-${i}` }))
    let made: core.ValidEnvelope[] = []
    return {
      make: (prefix) => {
        streams = [0, 1, 2, 3].map((i) => ({ tenant: 'bench', category: 'deployment', id: `${prefix}-${i}` }))
        if (prebuilt)
          made = Array.from({ length: OPS }, (_, i) => factory.intent(streams[i % 4]!, 'created', BENCH_DATA))
      },
      op: prebuilt
        ? (i) => st.append(streams[i % 4]!, [made[i]!])
        : (i) => {
            const s = streams[i % 4]!
            return st.append(s, [factory.intent(s, 'created', BENCH_DATA)])
          },
    }
  }
  const load = async (dir: string, pkg: string) =>
    import(pathToFileURL(join(dir, 'packages', pkg, 'src', 'index.ts')).href)
  // With a base, this tree's packages are imported the same way as the base's (by file URL), so that neither
  // variant gets an advantage from how it was loaded.
  const here = join(import.meta.dirname, '..', '..')
  const ours =
    base === undefined ? variant(core, store) : variant(await load(here, 'core'), await load(here, 'store-pg'), notify)
  const theirs = base === undefined ? undefined : variant(await load(base, 'core'), await load(base, 'store-pg'))
  const session = profile === undefined ? undefined : new Session()
  if (session) {
    session.connect()
    await session.post('Profiler.enable')
  }
  const b: number[] = []
  const a: number[] = []
  for (let k = 0; k <= ROUNDS; k++) {
    if (k === 1) await session?.post('Profiler.start')
    // Round 0 warms both up and is not counted.
    ours.make(`b${k}`)
    theirs?.make(`a${k}`)
    let sumB = 0
    let sumA = 0
    for (let from = 0, block = 0; from < OPS; from += BLOCK, block++) {
      const to = Math.min(from + BLOCK, OPS)
      for (const which of theirs === undefined ? ['b'] : block % 2 === 0 ? ['b', 'a'] : ['a', 'b']) {
        const op = which === 'b' ? ours.op : theirs!.op
        const c = process.cpuUsage()
        for (let i = from; i < to; i++) await op(i)
        const cu = process.cpuUsage(c)
        if (which === 'b') sumB += cu.user + cu.system
        else sumA += cu.user + cu.system
      }
    }
    if (k === 0) continue
    b.push(sumB / OPS)
    if (theirs) a.push(sumA / OPS)
  }
  if (session) writeFileSync(profile!, JSON.stringify((await session.post('Profiler.stop')).profile))
  const f = (xs: number[]) => `${median(xs).toFixed(1)} (${xs.map((x) => x.toFixed(0)).join(' ')})`
  console.log(`append-client-cpu: ${OPS} one-event appends × ${ROUNDS} rounds, client µs per append, medians`)
  console.log(`  this tree: ${f(b)}`)
  if (theirs) {
    console.log(`  base ${base}: ${f(a)}`)
    const ratios = b.map((x, k) => x / a[k]!)
    console.log(
      `  this ÷ base per round: ${ratios.map((x) => x.toFixed(3)).join(' ')}; median ${median(ratios).toFixed(3)}`,
    )
  }
} finally {
  await db.drop()
}
