// The test processes' dependencies that load as hundreds of small ES modules, bundled once for the suite: prints
// the path of a module scripts/test.sh gives node's test runner as a second --import (after tsx), which its test
// processes inherit. It registers a resolve hook that sends these bare specifiers to the bundles in .test-deps/.
//
// Why: a test process that imports the packages loads ~460 ES modules through tsx's loader hooks, each a round
// trip to the hooks thread; @sinclair/typebox is ~220 of them, @opentelemetry/api ~50, uuid ~20. Bundled, the
// packages' imports cost ~0.3 s less CPU per process (0.9 against 0.6 s, 2026-12-02), and the suite runs ~40 of
// them. Same code: each dependency's own published ES modules, inlined; the typebox entries share their chunks,
// so there is one TypeRegistry/FormatRegistry for all three. Neither the packages nor a test run one file at a
// time depend on it: without the --import, node resolves them from node_modules as usual.
import { mkdir, rm, writeFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'
import { writeResolveHooks } from './cli-bundle.ts'

const ROOT = fileURLToPath(new URL('../', import.meta.url))
const DIR = `${ROOT}.test-deps/`

/** Bare specifier → bundle file, with the package directory it is resolved from (where it is a dependency). */
const ENTRIES: Record<string, { file: string; from: string }> = {
  '@sinclair/typebox': { file: 'typebox', from: 'packages/core' },
  '@sinclair/typebox/compiler': { file: 'typebox-compiler', from: 'packages/core' },
  '@sinclair/typebox/value': { file: 'typebox-value', from: 'packages/core' },
  uuid: { file: 'uuid', from: 'packages/core' },
  '@opentelemetry/api': { file: 'opentelemetry-api', from: 'packages/bus-nats' },
}

await rm(DIR, { recursive: true, force: true })
await mkdir(DIR, { recursive: true })
// One build per package directory: entries resolved from the same directory share chunks (one typebox).
for (const from of new Set(Object.values(ENTRIES).map((e) => e.from))) {
  await build({
    entryPoints: Object.fromEntries(
      Object.entries(ENTRIES)
        .filter(([, e]) => e.from === from)
        .map(([specifier, e]) => [e.file, specifier]),
    ),
    absWorkingDir: `${ROOT}${from}`,
    outdir: DIR,
    outExtension: { '.js': '.mjs' },
    chunkNames: `${from.replace(/\W/g, '-')}-[hash]`,
    bundle: true,
    splitting: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    logLevel: 'warning',
  })
}
const map = Object.fromEntries(Object.entries(ENTRIES).map(([specifier, e]) => [specifier, `./${e.file}.mjs`]))
await writeResolveHooks(DIR, map)
await writeFile(
  `${DIR}register.mjs`,
  "import { register } from 'node:module'\nregister('./hooks.mjs', import.meta.url)\n",
)
process.stdout.write(`${DIR}register.mjs\n`)
