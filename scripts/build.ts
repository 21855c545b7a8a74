// Builds every package to packages/*/dist (ESM JavaScript and .d.ts): `tsc -b tsconfig.build.json`, then one
// change to what it wrote. `rewriteRelativeImportExtensions` turns the sources' `./x.ts` imports into `./x.js` in
// JavaScript but leaves them as written in declarations; TypeScript 5 and later resolve those, 4.x refuses them
// (TS2691). So every declaration's relative `.ts` imports are rewritten to `.js` after the build (idempotent; an
// unchanged project is not rebuilt, and its rewritten declarations stay newer than its sources). `--clean` removes
// dist/ first (what a release does). TypeScript 7's compiler is a native binary without the JavaScript API that a
// custom `writeFile` needed, hence the pass after it.
import { execFileSync } from 'node:child_process'
import { readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('../', import.meta.url))
const PACKAGES = ['core', 'store-pg', 'bus-nats', 'runtime', 'evtctl']

/** `from './x.ts'` and `import("./x.ts")` in a declaration file → `.js`; package imports are left alone. */
function rewriteDeclarationImports(text: string): string {
  return text.replace(/((?:from|import)\s*\(?\s*)(['"])(\.{1,2}\/[^'"]*?)\.ts\2/g, '$1$2$3.js$2')
}

/** The `tsc` of the workspace's TypeScript, run by this node. */
function tsc(args: string[]): void {
  const pkg = createRequire(import.meta.url).resolve('typescript/package.json')
  execFileSync(process.execPath, [join(dirname(pkg), 'bin/tsc'), ...args], { cwd: ROOT, stdio: 'inherit' })
}

async function build(clean: boolean): Promise<number> {
  if (clean) {
    for (const p of PACKAGES) await rm(join(ROOT, 'packages', p, 'dist'), { recursive: true, force: true })
  }
  try {
    tsc(['-b', 'tsconfig.build.json'])
  } catch {
    return 1
  }
  for (const p of PACKAGES) {
    const dist = join(ROOT, 'packages', p, 'dist')
    for (const f of await readdir(dist, { recursive: true })) {
      if (!f.endsWith('.d.ts')) continue
      const text = await readFile(join(dist, f), 'utf8')
      const rewritten = rewriteDeclarationImports(text)
      if (rewritten !== text) await writeFile(join(dist, f), rewritten)
    }
  }
  return 0
}

process.exitCode = await build(process.argv.includes('--clean'))
