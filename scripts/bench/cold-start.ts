// `pnpm bench:cold [-- --rounds N] [-- --also <path to another evtctl launcher>]`: the wall time of
// `evtctl --help` from a fresh process, the workspace's way (tsx compiling the sources) against the published
// way (plain node running the build, installed from the packed tarballs into a project outside the workspace).
// Variants alternate within each round; the table gives the median, min and max over the rounds.
import { spawnSync } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { ROOT, buildAndPack, freshProject } from '../pack.ts'

const { values } = parseArgs({
  options: { rounds: { type: 'string', default: '11' }, also: { type: 'string', multiple: true, default: [] } },
})
const rounds = Number(values.rounds)

const packs = await mkdtemp(join(tmpdir(), 'eventplane-packs-'))
const project = await freshProject(await buildAndPack(packs))
const built = join(project, 'node_modules/@eventplane/evtctl/dist/main.js')
const workspace = join(ROOT, 'packages/evtctl/bin/evtctl.js')

const variants: { name: string; args: string[] }[] = [
  { name: '`node -e 0` (the floor: node itself)', args: ['-e', '0'] },
  { name: '`evtctl --help`, workspace (tsx, sources)', args: [workspace, '--help'] },
  { name: '`evtctl --help`, built (plain node)', args: [built, '--help'] },
  { name: '`evtctl read --help`, built (loads one command)', args: [built, 'read', '--help'] },
  ...values.also.map((path) => ({ name: `\`${path} --help\``, args: [path, '--help'] })),
]

function timeOnce(args: string[]): number {
  const started = process.hrtime.bigint()
  const child = spawnSync(process.execPath, args, { cwd: project, stdio: ['ignore', 'ignore', 'pipe'] })
  const ms = Number(process.hrtime.bigint() - started) / 1e6
  if (child.status !== 0) throw new Error(`node ${args.join(' ')} exited ${child.status}: ${child.stderr}`)
  return ms
}

const samples = variants.map(() => [] as number[])
for (let round = 0; round < rounds; round++) {
  for (const [i, v] of variants.entries()) samples[i]!.push(timeOnce(v.args))
}
await rm(packs, { recursive: true, force: true })
await rm(project, { recursive: true, force: true })

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}
console.log(`node ${process.version}, ${rounds} rounds, variants alternating; wall ms from spawn to exit\n`)
console.log('| command | median ms | min ms | max ms |')
console.log('| --- | --- | --- | --- |')
variants.forEach((v, i) => {
  const xs = samples[i]!
  console.log(
    `| ${v.name} | ${median(xs).toFixed(0)} | ${Math.min(...xs).toFixed(0)} | ${Math.max(...xs).toFixed(0)} |`,
  )
})
