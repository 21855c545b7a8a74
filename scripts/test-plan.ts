// The order and grouping of the suite's test processes (scripts/test.sh). Usage:
//   test-plan.ts DIR FILE... -- writes one-line wrappers DIR/NN-<name>.test.ts and prints their paths, longest first
//
// Most test files run in groups: one node process imports the files of a group and runs their tests in turn. A
// file's own process costs ~2 s of CPU before its first test (node, tsx's loader hooks, the packages imported),
// and the suite keeps both cores busy, so fewer processes finish sooner. Groups are packed from each package's
// files by the seconds scripts/test-durations.txt records for them (a whole run's scripts/test-times.mjs output),
// about GROUP_SECONDS each, the longest file first into the lightest group; a file that record does not know
// counts as UNKNOWN_SECONDS. Files that start, kill or watch processes of their own (tests/faults, tests/ops, the
// fixture tests), and any file as long as a group, keep a process each.
//
// node's runner sorts the files it is given and starts them in that order, five at a time: the wrappers' numbers
// put the longest first, so no long file starts last and runs on alone at the end.
import { readFileSync, writeFileSync } from 'node:fs'
import { basename, join, relative } from 'node:path'

const GROUP_SECONDS = 120
const UNKNOWN_SECONDS = 15
const OWN_PROCESS = [
  /^tests\/(faults|ops)\//,
  /^packages\/bus-nats\/test\/(fixture-children-die|process-groups)\.test\.ts$/,
]

interface Unit {
  name: string
  files: string[]
  seconds: number
}

/** `seconds path` or `seconds count path` lines (scripts/test-times.mjs); anything else (a heading) is skipped. */
function readDurations(text: string): Map<string, number> {
  const seconds = new Map<string, number>()
  for (const line of text.split('\n')) {
    const m = /^\s*(\d+(?:\.\d+)?)\s+(?:\d+\s+)?(\S+\.test\.ts)\s*$/.exec(line)
    if (m) seconds.set(m[2]!, Number(m[1]))
  }
  return seconds
}

function packageOf(file: string): string {
  if (file.startsWith('packages/core/') || file.startsWith('packages/runtime/')) return 'core-runtime'
  const m = /^packages\/([^/]+)\//.exec(file)
  return m ? m[1]! : 'tests'
}

/** Each package's files packed into groups of about GROUP_SECONDS, plus the files that keep a process of their own. */
function plan(files: readonly string[], durations: ReadonlyMap<string, number>): Unit[] {
  const secondsOf = (f: string) => durations.get(f) ?? UNKNOWN_SECONDS
  const units: Unit[] = []
  const perPackage = new Map<string, string[]>()
  for (const file of files) {
    if (OWN_PROCESS.some((re) => re.test(file)) || secondsOf(file) >= GROUP_SECONDS) {
      units.push({ name: basename(file, '.test.ts'), files: [file], seconds: secondsOf(file) })
    } else {
      perPackage.set(packageOf(file), [...(perPackage.get(packageOf(file)) ?? []), file])
    }
  }
  for (const [pkg, pkgFiles] of perPackage) {
    const total = pkgFiles.reduce((sum, f) => sum + secondsOf(f), 0)
    const groups: Unit[] = Array.from({ length: Math.max(1, Math.round(total / GROUP_SECONDS)) }, (_, i) => ({
      name: `${pkg}-${i + 1}`,
      files: [],
      seconds: 0,
    }))
    for (const file of [...pkgFiles].sort((a, b) => secondsOf(b) - secondsOf(a) || a.localeCompare(b))) {
      const lightest = groups.reduce((min, g) => (g.seconds < min.seconds ? g : min))
      lightest.files.push(file)
      lightest.seconds += secondsOf(file)
    }
    units.push(...groups.filter((g) => g.files.length > 0))
  }
  return units.sort((a, b) => b.seconds - a.seconds || a.name.localeCompare(b.name))
}

const [dir, ...files] = process.argv.slice(2)
if (!dir || files.length === 0) {
  process.stderr.write('usage: test-plan.ts DIR FILE...\n')
  process.exit(1)
}
const units = plan(files, readDurations(readFileSync(join(import.meta.dirname, 'test-durations.txt'), 'utf8')))
const width = String(units.length).length
units.forEach((unit, i) => {
  const wrapper = join(dir, `${String(i).padStart(width, '0')}-${unit.name}.test.ts`)
  writeFileSync(wrapper, unit.files.map((f) => `import '${relative(dir, f)}'\n`).join(''))
  process.stdout.write(`${wrapper}\n`)
})
