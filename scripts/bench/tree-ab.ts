/**
 * pnpm tsx scripts/bench/tree-ab.ts --base DIR [--new .] [--pairs 6] -- scripts/bench/sub-ack.ts --json … — a
 * same-run A/B of two trees of the repository (a copy of the base commit beside the working tree): runs the
 * script (`node --import tsx`, cwd each tree) alternately, base then new, then new then base, … `--pairs`
 * times, each run its own process. The script's last stdout line is a JSON object of figures (CPU µs per
 * event by variant, as `sub-ack.ts --json` prints). Prints each run's figures, the load before it, and per
 * figure the median of the pairs' new ÷ base ratios with their range. Also, where the runs report `bare`,
 * the gap (figure − bare, same run) new ÷ base.
 */
import { execFileSync } from 'node:child_process'
import { resolve } from 'node:path'
import { argString, argValue, loadAvg, median } from './lib.ts'

const base = resolve(argString('base') ?? '')
const fresh = resolve(argString('new', '.'))
const pairs = argValue('pairs', 6)
const sep = process.argv.indexOf('--')
if (!argString('base') || sep < 0)
  throw new Error('usage: tree-ab.ts --base DIR [--new DIR] [--pairs N] -- script args…')
const script = process.argv.slice(sep + 1)

function run(tree: string): Record<string, number> {
  const out = execFileSync('node', ['--import', 'tsx', ...script], {
    cwd: tree,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  })
  return JSON.parse(out.trim().split('\n').at(-1)!) as Record<string, number>
}

const results: { base: Record<string, number>; new: Record<string, number> }[] = []
for (let i = 0; i < pairs; i++) {
  const order: ('base' | 'new')[] = i % 2 === 0 ? ['base', 'new'] : ['new', 'base']
  const pair: Partial<Record<'base' | 'new', Record<string, number>>> = {}
  for (const side of order) {
    const load = loadAvg(1)
    pair[side] = run(side === 'base' ? base : fresh)
    console.log(`pair ${i + 1} ${side}: ${JSON.stringify(pair[side])} (load ${load})`)
  }
  results.push(pair as { base: Record<string, number>; new: Record<string, number> })
}
const fmt = (xs: number[]): string =>
  `${median(xs).toFixed(3)} (${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)})`
for (const key of Object.keys(results[0]!.base)) {
  const ratios = results.map((r) => r.new[key]! / r.base[key]!)
  const b = median(results.map((r) => r.base[key]!))
  const n = median(results.map((r) => r.new[key]!))
  let line = `${key}: base ${b.toFixed(1)}, new ${n.toFixed(1)} (medians); new ÷ base ${fmt(ratios)}`
  if (key !== 'bare' && 'bare' in results[0]!.base) {
    const gaps = results.map((r) => (r.new[key]! - r.new.bare!) / (r.base[key]! - r.base.bare!))
    const gb = median(results.map((r) => r.base[key]! - r.base.bare!))
    const gn = median(results.map((r) => r.new[key]! - r.new.bare!))
    line += `; gap over bare base ${gb.toFixed(1)}, new ${gn.toFixed(1)}, new ÷ base ${fmt(gaps)}`
  }
  console.log(line)
}
console.log(`load at the end ${loadAvg()}`)
