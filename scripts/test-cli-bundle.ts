// Bundles evtctl (src/main.ts and the workspace packages it imports) into one ES module for the test suite,
// so that each of the suite's ~200 evtctl subprocesses loads one file instead of tsx transforming and resolving
// ~150 TypeScript modules through its loader hooks (measured: `status --help` 0.45 s of CPU instead of 1.3 s).
// It is the same source: every `import.meta.url` keeps its own file's URL (migrations and prom-client are found
// where the sources are), evtctl's own dependencies stay external, and tsx is registered first so that a
// TypeScript domain loads as under bin/evtctl.js. A domain of the user's (`--domain file`) imports the workspace
// packages itself, which would be a second copy beside the bundle's, so the test helper runs those through
// bin/evtctl.js (packages/evtctl/test/helpers.ts). scripts/test.sh writes the bundle to
// packages/evtctl/.test-bin/ and points EVTCTL_TEST_BIN at it; without that variable every test runs bin/evtctl.js,
// as a developer running one test file does.
import { readFile } from 'node:fs/promises'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { build } from 'esbuild'

const ROOT = fileURLToPath(new URL('../', import.meta.url))
const OUT = `${ROOT}packages/evtctl/.test-bin/evtctl.mjs`

const pkg = JSON.parse(await readFile(`${ROOT}packages/evtctl/package.json`, 'utf8')) as {
  dependencies: Record<string, string>
}
const external = [...Object.keys(pkg.dependencies).filter((d) => !d.startsWith('@eventplane/')), 'tsx', 'tsx/*']

await build({
  entryPoints: [`${ROOT}packages/evtctl/src/main.ts`],
  outfile: OUT,
  bundle: true,
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
      "import { register as registerTsx } from 'tsx/esm/api'",
      'registerTsx()',
    ].join('\n'),
  },
  plugins: [
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
process.stdout.write(`${OUT}\n`)
