// `pnpm bench:cold [-- --rounds N] [-- --also <path to another evtctl launcher>]`: the wall time of
// `evtctl --help` from a fresh process, the workspace's way (tsx compiling the sources) against the published
// way (plain node running the build, installed from the packed tarballs into a project outside the workspace).
// Variants alternate within each round; the table gives wall time (median, min, max over the rounds) and the
// CPU time the process used (median), which a loaded machine disturbs much less than wall time. One more row
// runs a command that reads PostgreSQL (`streams` of an empty, migrated test database): what a command that
// never touches NATS costs to start.
import { spawnSync } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { createTestDatabase } from '@eventplane/store-pg/testing'
import { ROOT, buildAndPack, freshProject } from '../pack.ts'

const { values } = parseArgs({
  options: { rounds: { type: 'string', default: '11' }, also: { type: 'string', multiple: true, default: [] } },
})
const rounds = Number(values.rounds)

const packs = await mkdtemp(join(tmpdir(), 'eventplane-packs-'))
const project = await freshProject(await buildAndPack(packs))
const built = join(project, 'node_modules/@eventplane/evtctl/dist/main.js')
const workspace = join(ROOT, 'packages/evtctl/bin/evtctl.js')
const db = await createTestDatabase('ep_bench_cold')

const variants: { name: string; args: string[] }[] = [
  { name: '`node -e 0` (the floor: node itself)', args: ['-e', '0'] },
  { name: '`evtctl --help`, workspace (tsx, sources)', args: [workspace, '--help'] },
  { name: '`evtctl --help`, built (plain node)', args: [built, '--help'] },
  { name: '`evtctl read --help`, built (loads one command)', args: [built, 'read', '--help'] },
  {
    name: '`evtctl streams --tenant acme`, built (PostgreSQL only, an empty log)',
    args: [built, 'streams', '--tenant', 'acme'],
  },
  ...values.also.map((path) => ({ name: `\`${path} --help\``, args: [path, '--help'] })),
]

/** Wall ms from spawn to exit, and the CPU ms (user + sys) the child used: bash's `times` after it. */
function timeOnce(args: string[]): { wall: number; cpu: number } {
  const started = process.hrtime.bigint()
  const child = spawnSync('bash', ['-c', '"$@" > /dev/null; s=$?; times; exit $s', 'bash', process.execPath, ...args], {
    cwd: project,
    encoding: 'utf8',
    env: { ...process.env, EVENTPLANE_DATABASE_URL: db.url },
  })
  const wall = Number(process.hrtime.bigint() - started) / 1e6
  if (child.status !== 0) throw new Error(`node ${args.join(' ')} exited ${child.status}: ${child.stderr}`)
  // `times` prints the shell's own user/sys, then its children's: "0m0.081s 0m0.012s".
  const [user, sys] = [
    ...child.stdout
      .trim()
      .split('\n')
      .at(-1)!
      .matchAll(/(\d+)m([\d.]+)s/g),
  ].map((m) => Number(m[1]) * 60_000 + Number(m[2]) * 1000)
  return { wall, cpu: user! + sys! }
}

const samples = variants.map(() => ({ wall: [] as number[], cpu: [] as number[] }))
for (let round = 0; round < rounds; round++) {
  for (const [i, v] of variants.entries()) {
    const { wall, cpu } = timeOnce(v.args)
    samples[i]!.wall.push(wall)
    samples[i]!.cpu.push(cpu)
  }
}
await rm(packs, { recursive: true, force: true })
await rm(project, { recursive: true, force: true })
await db.drop()

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}
console.log(
  `node ${process.version}, ${rounds} rounds, variants alternating, load average ${loadavg()[0]!.toFixed(1)}\n`,
)
console.log('| command | wall median ms | wall min ms | wall max ms | CPU median ms (user + sys) |')
console.log('| --- | --- | --- | --- | --- |')
for (const [i, v] of variants.entries()) {
  const { wall, cpu } = samples[i]!
  const cells = [median(wall), Math.min(...wall), Math.max(...wall), median(cpu)].map((x) => x.toFixed(0))
  console.log(`| ${v.name} | ${cells.join(' | ')} |`)
}
