// Builds every package to packages/*/dist (ESM JavaScript and .d.ts): `tsc -b tsconfig.build.json` through
// TypeScript's API, with one change to what it writes. `rewriteRelativeImportExtensions` turns the sources'
// `./x.ts` imports into `./x.js` in JavaScript but leaves them as written in declarations; TypeScript 5 resolves
// those, 4.x refuses them (TS2691). Declarations are rewritten as they are written, so tsc's incremental state
// stays its own and an unchanged project is not rebuilt. `--clean` removes dist/ first (what a release does).
import { rm } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'

const ROOT = new URL('../', import.meta.url)
const PACKAGES = ['core', 'store-pg', 'bus-nats', 'runtime', 'evtctl']

/** `from './x.ts'` and `import("./x.ts")` in a declaration file → `.js`; package imports are left alone. */
function rewriteDeclarationImports(text: string): string {
  return text.replace(/((?:from|import)\s*\(?\s*)(['"])(\.{1,2}\/[^'"]*?)\.ts\2/g, '$1$2$3.js$2')
}

async function build(clean: boolean): Promise<ts.ExitStatus> {
  if (clean) {
    for (const p of PACKAGES) await rm(new URL(`packages/${p}/dist/`, ROOT), { recursive: true, force: true })
  }
  const system: ts.System = {
    ...ts.sys,
    writeFile(path, data, writeBom) {
      ts.sys.writeFile(path, path.endsWith('.d.ts') ? rewriteDeclarationImports(data) : data, writeBom)
    },
  }
  const formatHost: ts.FormatDiagnosticsHost = {
    getCanonicalFileName: (f) => f,
    getCurrentDirectory: () => ts.sys.getCurrentDirectory(),
    getNewLine: () => ts.sys.newLine,
  }
  const report = (d: ts.Diagnostic): void => ts.sys.write(ts.formatDiagnosticsWithColorAndContext([d], formatHost))
  const host = ts.createSolutionBuilderHost(system, undefined, report, report)
  const builder = ts.createSolutionBuilder(host, [fileURLToPath(new URL('tsconfig.build.json', ROOT))], {})
  return builder.build()
}

process.exitCode = await build(process.argv.includes('--clean'))
