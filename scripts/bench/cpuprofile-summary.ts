/**
 * pnpm tsx scripts/bench/cpuprofile-summary.ts [--top 40] file.cpuprofile… — self time of V8 CPU
 * profiles, summed over the files: by function (name, file:line) and by where the code lives
 * (a node_modules package, our packages, node internals, GC, idle), as shares of the non-idle time.
 */
import { readFileSync } from 'node:fs'
import { argValue } from './lib.ts'

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  hitCount?: number
}
interface Profile {
  nodes: ProfileNode[]
  samples: number[]
  timeDeltas: number[]
}

const TOP = argValue('top', 40)
const files = process.argv.slice(2).filter((a, i, all) => a.endsWith('.cpuprofile') && all[i - 1] !== '--top')
const byFunction = new Map<string, number>()
const byPlace = new Map<string, number>()
let total = 0

function place(url: string, name: string): string {
  if (name === '(garbage collector)') return 'GC'
  if (name === '(idle)' || name === '(program)') return name
  const pkg = /node_modules\/(?:\.pnpm\/[^/]+\/node_modules\/)?((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (pkg) return pkg[1]!
  const ours = /packages\/([^/]+)\/src\/(.+)$/.exec(url)
  if (ours) return `@eventplane/${ours[1]}/${ours[2]}`
  if (url.startsWith('node:') || url === '') return 'node internals'
  return url.replace(/^.*\/scripts\//, 'scripts/')
}

for (const file of files) {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile
  const nodes = new Map(p.nodes.map((n) => [n.id, n]))
  for (let i = 0; i < p.samples.length; i++) {
    const n = nodes.get(p.samples[i]!)!
    const us = p.timeDeltas[i] ?? 0
    const { functionName, url, lineNumber } = n.callFrame
    const where = place(url, functionName)
    byPlace.set(where, (byPlace.get(where) ?? 0) + us)
    if (where === '(idle)') continue
    total += us
    const key = `${functionName || '(anonymous)'} ${url.replace(/^.*node_modules\//, '').replace(/^.*\/packages\//, '')}:${lineNumber + 1}`
    byFunction.set(key, (byFunction.get(key) ?? 0) + us)
  }
}

const pct = (us: number) => `${((100 * us) / total).toFixed(1)}%`
console.log(`${files.length} profile(s), ${(total / 1000).toFixed(0)} ms non-idle`)
console.log('\nby place (self time)')
for (const [k, v] of [...byPlace].sort((a, b) => b[1] - a[1]))
  if (k !== '(idle)') console.log(`${pct(v).padStart(6)}  ${k}`)
console.log(`\ntop ${TOP} functions (self time)`)
for (const [k, v] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, TOP))
  console.log(`${pct(v).padStart(6)}  ${k}`)
