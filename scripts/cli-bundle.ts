// evtctl bundled ahead of time, for the test suite (scripts/test-cli-bundle.ts) and the demo (scripts/demo.ts):
// each evtctl start loads a few files instead of tsx transforming and resolving ~150 TypeScript modules through
// its loader hooks (measured: `status --help` 0.45 s of CPU instead of 1.3 s).
// It is the same source: every `import.meta.url` keeps its own file's URL (migrations and prom-client are found
// where the sources are). Dependencies are inlined too (nats.js, commander, pino, …: resolving and reading their
// few hundred files was a third of a short command's start), except the driver (below) and tsx. Each workspace package is an entry of
// its own, split into shared chunks, and a resolve hook maps `@eventplane/<pkg>` to that entry: a domain file
// (`--domain x.js`, the example package) that imports the packages itself gets the very modules evtctl runs,
// not a second copy (whose classes and brands evtctl would not recognise). tsx is registered too when a domain
// written in TypeScript is named (see the launcher below).
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { build } from 'esbuild'

const ROOT = fileURLToPath(new URL('../', import.meta.url))

/** Output name → source of each entry; the packages' names are what the resolve hook maps. */
const PACKAGES: Record<string, string> = {
  '@eventplane/core': 'packages/core/src/index.ts',
  '@eventplane/store-pg': 'packages/store-pg/src/index.ts',
  '@eventplane/bus-nats': 'packages/bus-nats/src/index.ts',
  '@eventplane/runtime': 'packages/runtime/src/index.ts',
  '@eventplane/evtctl': 'packages/evtctl/src/index.ts',
  '@eventplane/example-deployments': 'examples/deployments/src/index.ts',
}
const fileOf = (name: string): string => `${name.replace('@eventplane/', 'pkg-')}`

/**
 * Dependencies a domain imports itself, each an entry too (`pkg-<name>`, resolved from core: the copy the packages
 * use) that the resolve hook maps: TypeBox, which every domain imports for its schemas. Through the hook thread, its
 * ~100 modules cost a domain's evtctl start 0.66 s of CPU on their own (`state` with a plain JavaScript domain: 0.93
 * against 0.27 s without one; 0.45 s with TypeBox mapped, 2026-12-01), and the suite starts evtctl with a domain
 * about 150 times. One module, the one the packages run: the same TypeBox, as a domain in a deployment gets when
 * npm dedupes it.
 */
const DOMAIN_DEPENDENCIES: Record<string, string> = { '@sinclair/typebox': 'pkg-typebox' }

/**
 * Bundles evtctl and the workspace packages into `dir` (inside the repository, so that what stays external, the
 * driver, tsx and pino-pretty, resolves from its node_modules) and returns the launcher to run with node. Same sources, compiled
 * ahead of time, as an installed evtctl is: each start loads a few files instead of tsx transforming and
 * resolving ~150 TypeScript modules through its loader hooks. `dir` is emptied first.
 */
export async function bundleEvtctl(dir: string): Promise<string> {
  // Inlined dependencies: ~0.1 s less CPU per start (`status` 0.33 against 0.43 s, `--version` 0.15 against
  // 0.19 s; 2026-12-01), and the suite starts evtctl about 460 times. pino-pretty is not inlined: logger.ts
  // requires it at run time, for a terminal only.
  const external = ['tsx', 'tsx/*']

  await rm(dir, { recursive: true, force: true })
  await mkdir(dir, { recursive: true })
  await build({
    entryPoints: {
      main: `${ROOT}packages/evtctl/src/main.ts`,
      ...Object.fromEntries(Object.entries(PACKAGES).map(([name, src]) => [fileOf(name), `${ROOT}${src}`])),
      ...Object.fromEntries(Object.entries(DOMAIN_DEPENDENCIES).map(([name, file]) => [file, name])),
    },
    // Where a bare entry (DOMAIN_DEPENDENCIES) is resolved from; the others are absolute.
    absWorkingDir: `${ROOT}packages/core`,
    outdir: dir,
    outExtension: { '.js': '.mjs' },
    bundle: true,
    splitting: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    external,
    logLevel: 'warning',
    // CommonJS dependencies inlined here (nkeys, tweetnacl) `require` node's modules: give them a require.
    banner: {
      js: [
        "import { createRequire as createRequireForBundle } from 'node:module'",
        'const require = createRequireForBundle(import.meta.url)',
      ].join('\n'),
    },
    plugins: [
      {
        // The driver stays the file store-pg installs (its patched copy, `patches/`), not a copy inlined in a chunk:
        // store-pg's guard for the driver's uncatchable write after a close (`isPgWriteAfterClose`) knows the defect
        // by its frame in postgres.js's `src/connection.js`, and the bundle must run what an installed evtctl runs.
        // evtctl no longer depends on postgres itself, so it is resolved from store-pg.
        name: 'driver-from-store-pg',
        setup(b) {
          const driver = pathToFileURL(
            createRequire(`${ROOT}packages/store-pg/package.json`)
              .resolve('postgres')
              .replace(/cjs[\\/]src[\\/]index\.js$/, 'src/index.js'),
          ).href
          b.onResolve({ filter: /^postgres$/ }, () => ({ path: driver, external: true }))
        },
      },
      {
        name: 'own-import-meta-url',
        setup(b) {
          b.onLoad({ filter: /\.ts$/ }, async ({ path }) => {
            const text = await readFile(path, 'utf8')
            if (!text.includes('import.meta.url')) return undefined
            return {
              contents: text.replaceAll('import.meta.url', JSON.stringify(pathToFileURL(path).href)),
              loader: 'ts',
            }
          })
        },
      },
    ],
  })

  const map = Object.fromEntries([
    ...Object.keys(PACKAGES).map((name) => [name, `./${fileOf(name)}.mjs`]),
    ...Object.entries(DOMAIN_DEPENDENCIES).map(([name, file]) => [name, `./${file}.mjs`]),
  ])
  await writeResolveHooks(dir, map)
  // tsx (for a domain written in TypeScript) only when the command line or EVENTPLANE_DOMAIN names a TypeScript
  // file: registering it costs ~0.37 s of CPU per start (measured 0.82 against 0.44 s for `status --help`), and
  // the suite starts evtctl hundreds of times. An installed evtctl (plain node on dist/) registers no tsx at all.
  // tsx first, then the map: hooks run last-registered first, so `@eventplane/*` never reaches tsx.
  // The map only when a domain may be loaded (the only module evtctl imports from outside the bundle): a --domain
  // or --config flag, EVENTPLANE_DOMAIN or EVENTPLANE_CONFIG, or an eventplane.json where it runs. Registered
  // hooks put every import of the bundle through the hooks thread: 0.08 s of CPU per start (0.26 against 0.18 s
  // for `status --help`), and most starts name no domain.
  await writeFile(
    `${dir}evtctl.mjs`,
    [
      "import { existsSync } from 'node:fs'",
      "import { register } from 'node:module'",
      'const TYPESCRIPT = /\\.[cm]?tsx?$/',
      'const args = process.argv.slice(2)',
      'const named = [...args.flatMap((a) => a.split("=")), process.env.EVENTPLANE_DOMAIN ?? ""]',
      'const typescript = named.some((a) => TYPESCRIPT.test(a))',
      'if (typescript) (await import("tsx/esm/api")).register()',
      'const domain = typescript || args.some((a) => /^--(domain|config)(=|$)/.test(a)) ||',
      '  !!process.env.EVENTPLANE_DOMAIN || !!process.env.EVENTPLANE_CONFIG || existsSync("eventplane.json")',
      "if (domain) register('./hooks.mjs', import.meta.url)",
      "await import('./main.mjs')",
      '',
    ].join('\n'),
  )
  return `${dir}evtctl.mjs`
}

/**
 * Writes `dir`hooks.mjs: node module hooks (for `register`) that resolve each bare specifier of `map` to its file,
 * relative to `dir`, and pass every other to the next hook.
 */
export async function writeResolveHooks(dir: string, map: Record<string, string>): Promise<void> {
  await writeFile(
    `${dir}hooks.mjs`,
    [
      `const MAP = ${JSON.stringify(map)}`,
      'export async function resolve(specifier, context, next) {',
      '  const file = MAP[specifier]',
      '  if (file) return { url: new URL(file, import.meta.url).href, format: "module", shortCircuit: true }',
      '  return next(specifier, context)',
      '}',
      '',
    ].join('\n'),
  )
}
