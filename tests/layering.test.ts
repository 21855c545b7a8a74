import assert from 'node:assert/strict'
import { readFileSync, readdirSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, test } from 'node:test'

const ROOT = fileURLToPath(new URL('../', import.meta.url))

/** The layering, bottom up: a package may import only packages below it (and itself). */
const LAYERS = ['core', 'store-pg', 'bus-nats', 'runtime', 'evtctl'] as const
/** Example domains sit above everything: they may import any package; only evtctl's tests may import them. */
const EXAMPLE_LAYER = LAYERS.length

interface SourceFile {
  /** Repository-relative path with `/` separators. */
  path: string
  text: string
}

interface Package {
  /** e.g. `packages/bus-nats` */
  dir: string
  /** e.g. `@eventplane/bus-nats` */
  name: string
  layer: number
}

/** The workspace's packages (`packages/*`, `examples/*`) with their layer. */
function workspacePackages(root: string): Package[] {
  const out: Package[] = []
  for (const parent of ['packages', 'examples']) {
    for (const entry of readdirSync(join(root, parent))) {
      const manifest = join(root, parent, entry, 'package.json')
      let name: string
      try {
        name = (JSON.parse(readFileSync(manifest, 'utf8')) as { name: string }).name
      } catch {
        continue
      }
      const layer = parent === 'examples' ? EXAMPLE_LAYER : LAYERS.indexOf(entry as (typeof LAYERS)[number])
      out.push({ dir: `${parent}/${entry}`, name, layer })
    }
  }
  return out
}

/** Every TypeScript and JavaScript file of a package (sources, tests, bins, scripts; not node_modules, dist or a dot dir). */
function packageFiles(root: string, dir: string): SourceFile[] {
  const out: SourceFile[] = []
  const walk = (d: string): void => {
    for (const entry of readdirSync(join(root, d))) {
      if (entry === 'node_modules' || entry === 'dist' || entry.startsWith('.')) continue
      const path = `${d}/${entry}`
      if (statSync(join(root, path)).isDirectory()) walk(path)
      else if (/\.[cm]?[jt]sx?$/.test(entry) && !/\.d\.[cm]?ts$/.test(entry))
        out.push({ path, text: readFileSync(join(root, path), 'utf8') })
    }
  }
  walk(dir)
  return out
}

/**
 * The module specifiers a file imports or re-exports, statically or with
 * `import()`, or loads with `require()`. Import statements only (at the start of a line), so source
 * text inside template strings (a test writing a domain file) is not read as
 * the test's own imports.
 */
export function importsOf(text: string): string[] {
  const out: string[] = []
  const statement = /^\s*(?:import|export)\s(?:[^'"`;]*?\sfrom\s*)?['"]([^'"]+)['"]/gm
  const dynamic = /\b(?:import|require)\(\s*['"]([^'"]+)['"]\s*\)/g
  for (const m of text.matchAll(statement)) out.push(m[1]!)
  for (const m of text.matchAll(dynamic)) out.push(m[1]!)
  return out
}

/** Every import of `files` that breaks the layering, one line each (empty when all is well). */
export function layeringViolations(packages: readonly Package[], files: readonly SourceFile[]): string[] {
  const byName = new Map(packages.map((p) => [p.name, p]))
  const owner = (path: string): Package | undefined => packages.find((p) => path.startsWith(`${p.dir}/`))
  const violations: string[] = []
  for (const file of files) {
    const from = owner(file.path)
    if (from === undefined) continue
    const isTest = /\/test\//.test(file.path)
    for (const spec of importsOf(file.text)) {
      if (spec.startsWith('.')) {
        const target = relative(ROOT, resolve(ROOT, dirname(file.path), spec))
          .split(sep)
          .join('/')
        if (!target.startsWith(`${from.dir}/`))
          violations.push(`${file.path}: ${spec} reaches outside ${from.name} by relative path`)
        continue
      }
      const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!
      const to = byName.get(name)
      if (to === undefined || to === from) continue
      if (to.layer === EXAMPLE_LAYER) {
        if (!(from.name === '@eventplane/evtctl' && isTest))
          violations.push(`${file.path}: imports the example ${to.name} (only evtctl's tests and the demo may)`)
        continue
      }
      if (to.layer > from.layer)
        violations.push(`${file.path}: ${from.name} imports ${to.name}, which is above it in the layering`)
    }
  }
  return violations
}

/** The PostgreSQL driver and its one owner: store-pg bundles the patched copy (docs/deploying.md, "bundled driver"). */
const DRIVER = 'postgres'
const DRIVER_OWNER = '@eventplane/store-pg'
const DEPENDENCY_FIELDS = ['dependencies', 'devDependencies', 'peerDependencies', 'optionalDependencies'] as const

/**
 * Every import of the driver (a value or a type, static or `import()`) by a file that store-pg does not own:
 * the other packages, the examples and the workspace's own scripts and tests take its types from
 * `@eventplane/store-pg` and its pools from `connectPg` (or `postgres` of `@eventplane/store-pg/testing`).
 */
export function driverImports(packages: readonly Package[], files: readonly SourceFile[]): string[] {
  const owner = packages.find((p) => p.name === DRIVER_OWNER)!
  return files
    .filter((f) => !f.path.startsWith(`${owner.dir}/`))
    .flatMap((f) =>
      importsOf(f.text)
        .filter((spec) => spec === DRIVER || spec.startsWith(`${DRIVER}/`))
        .map((spec) => `${f.path}: imports ${spec} (only ${DRIVER_OWNER} may; take its types from there)`),
    )
}

/** Every manifest (the workspace root's, each package's) other than store-pg's that names the driver. */
export function driverDependents(manifests: readonly { path: string; json: Record<string, unknown> }[]): string[] {
  const out: string[] = []
  for (const { path, json } of manifests) {
    if (json.name === DRIVER_OWNER) continue
    for (const field of DEPENDENCY_FIELDS) {
      const deps = json[field] as Record<string, string> | undefined
      if (deps?.[DRIVER] !== undefined) out.push(`${path}: ${field} names ${DRIVER} (only ${DRIVER_OWNER} may)`)
    }
  }
  return out
}

/** The root's and every workspace package's package.json. */
function manifests(root: string, packages: readonly Package[]): { path: string; json: Record<string, unknown> }[] {
  return ['package.json', ...packages.map((p) => `${p.dir}/package.json`)].map((path) => ({
    path,
    json: JSON.parse(readFileSync(join(root, path), 'utf8')) as Record<string, unknown>,
  }))
}

/** Value imports between one package's files that form a cycle (type-only imports do not count). */
export function importCycles(files: readonly SourceFile[]): string[][] {
  const graph = new Map<string, string[]>()
  for (const file of files) {
    const edges: string[] = []
    const valueImport = /^\s*(?:import|export)\s(?!type\s)(?:[^'"`;]*?\sfrom\s*)?['"](\.[^'"]+)['"]/gm
    for (const m of file.text.matchAll(valueImport))
      edges.push(
        relative(ROOT, resolve(ROOT, dirname(file.path), m[1]!))
          .split(sep)
          .join('/'),
      )
    graph.set(file.path, edges)
  }
  const cycles: string[][] = []
  const state = new Map<string, 'open' | 'done'>()
  const stack: string[] = []
  const visit = (node: string): void => {
    state.set(node, 'open')
    stack.push(node)
    for (const next of graph.get(node) ?? []) {
      if (!graph.has(next)) continue
      if (state.get(next) === 'open') cycles.push([...stack.slice(stack.indexOf(next)), next])
      else if (state.get(next) === undefined) visit(next)
    }
    stack.pop()
    state.set(node, 'done')
  }
  for (const node of graph.keys()) if (state.get(node) === undefined) visit(node)
  return cycles
}

describe('layering: core → store-pg → bus-nats → runtime → evtctl, examples above all', () => {
  const packages = workspacePackages(ROOT)
  const files = packages.flatMap((p) => packageFiles(ROOT, p.dir))

  test('the workspace has the five packages and the example', () => {
    assert.deepEqual(packages.map((p) => p.name).sort(), [
      '@eventplane/bus-nats',
      '@eventplane/core',
      '@eventplane/evtctl',
      '@eventplane/example-deployments',
      '@eventplane/runtime',
      '@eventplane/store-pg',
    ])
    assert.ok(files.length > 100, `read ${files.length} files`)
  })

  test('no package imports one above it, an example, or another package by relative path', () => {
    assert.deepEqual(layeringViolations(packages, files), [])
  })

  test('store-pg alone names and imports postgres: the others take its types from store-pg', () => {
    const rootFiles = ['scripts', 'tests'].flatMap((d) => packageFiles(ROOT, d))
    assert.deepEqual(driverImports(packages, [...files, ...rootFiles]), [])
    assert.deepEqual(driverDependents(manifests(ROOT, packages)), [])
    assert.ok(
      files.some((f) => f.path.startsWith('packages/store-pg/src/') && importsOf(f.text).includes(DRIVER)),
      'store-pg imports the driver',
    )
  })

  test('no package has a cycle of value imports between its own modules', () => {
    for (const p of packages) {
      const cycles = importCycles(files.filter((f) => f.path.startsWith(`${p.dir}/src/`)))
      assert.deepEqual(
        cycles.map((c) => c.join(' → ')),
        [],
        p.name,
      )
    }
  })

  test('the checks catch what they are for', () => {
    const file = (path: string, text: string): SourceFile => ({ path, text })
    assert.deepEqual(
      layeringViolations(packages, [
        file('packages/core/src/x.ts', "import { Relay } from '@eventplane/bus-nats'\n"),
        file('packages/store-pg/src/x.ts', "export { a } from '@eventplane/runtime/testing'\n"),
        file('packages/runtime/test/x.ts', "import { domain } from '@eventplane/example-deployments'\n"),
        file('packages/bus-nats/src/x.ts', "const m = await import('../../store-pg/src/rows.ts')\n"),
        file('packages/evtctl/test/x.ts', "import { domain } from '@eventplane/example-deployments'\n"),
        file('packages/evtctl/src/x.ts', "import { Relay } from '@eventplane/bus-nats'\nimport { y } from './y.ts'\n"),
      ]).map((v) => v.split(':')[0]),
      [
        'packages/core/src/x.ts',
        'packages/store-pg/src/x.ts',
        'packages/runtime/test/x.ts',
        'packages/bus-nats/src/x.ts',
      ],
    )
    assert.deepEqual(
      driverImports(packages, [
        file('packages/bus-nats/src/x.ts', "import type { Sql } from 'postgres'\n"),
        file('packages/runtime/test/x.ts', "import postgres from 'postgres'\n"),
        // A template, so this file's own text holds no `import(` of the driver for the check to find.
        file('packages/evtctl/src/x.ts', `type Sql = import('${DRIVER}').Sql\n`),
        file('scripts/bench/x.ts', "import type postgres from 'postgres'\n"),
        file('scripts/x.mjs', "import postgres from 'postgres'\n"),
        file('tests/support/x.cjs', `const postgres = require('${DRIVER}')\n`),
        file('packages/store-pg/src/x.ts', "import postgres from 'postgres'\n"),
        file(
          'packages/runtime/src/x.ts',
          "import type { Sql } from '@eventplane/store-pg'\nimport p from 'postgres-array'\n",
        ),
      ]).map((v) => v.split(':')[0]),
      [
        'packages/bus-nats/src/x.ts',
        'packages/runtime/test/x.ts',
        'packages/evtctl/src/x.ts',
        'scripts/bench/x.ts',
        'scripts/x.mjs',
        'tests/support/x.cjs',
      ],
    )
    assert.deepEqual(
      driverDependents([
        { path: 'packages/store-pg/package.json', json: { name: DRIVER_OWNER, dependencies: { postgres: '3.4.9' } } },
        { path: 'packages/runtime/package.json', json: { name: 'r', dependencies: { postgres: '3.4.9' } } },
        { path: 'package.json', json: { name: 'eventplane', devDependencies: { postgres: '3.4.9' } } },
        { path: 'packages/bus-nats/package.json', json: { name: 'b', dependencies: { 'postgres-array': '1' } } },
      ]).map((v) => v.split(':')[0]),
      ['packages/runtime/package.json', 'package.json'],
    )
    assert.equal(
      importCycles([
        file('packages/evtctl/src/a.ts', "import { b } from './b.ts'\n"),
        file('packages/evtctl/src/b.ts', "import { a } from './a.ts'\n"),
        file('packages/evtctl/src/c.ts', "import type { a } from './a.ts'\n"),
      ]).length,
      1,
    )
  })
})
