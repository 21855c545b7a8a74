// Builds and packs every package under packages/ as it would be published, and installs the tarballs into a fresh
// npm project outside the workspace: what the adoption test (tests/adoption.test.ts) and the cold-start benchmark
// run against. `tsx scripts/pack.ts <dir>` packs into <dir> and prints the tarballs.
import { execFileSync, execSync } from 'node:child_process'
import { mkdtemp, readdir, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const ROOT = fileURLToPath(new URL('../', import.meta.url))
/** The published packages, dependencies first. */
export const PACKAGES = ['core', 'store-pg', 'bus-nats', 'runtime', 'evtctl'] as const

/**
 * What `pnpm pack` of the packages needs: lifecycle scripts skipped (the build just ran), and `node-linker=hoisted`
 * for that command alone (`pnpm publish` needs it too: docs/architecture.md). store-pg bundles its patched postgres.js (`bundleDependencies`,
 * docs/deploying.md), which pnpm refuses under the workspace's isolated linker
 * (ERR_PNPM_BUNDLED_DEPENDENCIES_WITHOUT_HOISTED: a bundled package's own dependencies would be missing). postgres.js
 * has none, and pack installs nothing, so the setting only lets pnpm follow `node_modules/postgres` into the tarball.
 */
export const PACK_FLAGS = '--config.ignore-scripts=true --config.node-linker=hoisted'

/** pnpm as scripts/setup.sh found it (`$PNPM` may be `npx -y pnpm@…`). */
const PNPM = process.env.PNPM ?? 'pnpm'

/**
 * A clean build (dist/ removed first, so nothing from a deleted source ships), then `pnpm pack` of every package
 * into `dest`: pnpm replaces `workspace:*` with versions and applies `publishConfig` (exports and bin point at
 * dist/); store-pg's tarball carries the patched driver (PACK_FLAGS). Returns the tarballs' paths, in PACKAGES
 * order.
 */
export async function buildAndPack(dest: string): Promise<string[]> {
  execFileSync(process.execPath, ['--import', 'tsx', join(ROOT, 'scripts/build.ts'), '--clean'], {
    cwd: ROOT,
    stdio: 'inherit',
  })
  execSync(`${PNPM} -r --filter "./packages/*" ${PACK_FLAGS} pack --pack-destination "${dest}"`, {
    cwd: ROOT,
    stdio: ['ignore', 'ignore', 'inherit'],
  })
  const files = await readdir(dest)
  return PACKAGES.map((p) => {
    const file = files.find((f) => f === `eventplane-${p}-0.1.0.tgz`)
    if (file === undefined) throw new Error(`pnpm pack wrote no tarball for ${p} in ${dest}`)
    return join(dest, file)
  })
}

/**
 * A new npm project in a fresh directory under the OS temp dir (outside the workspace, so nothing resolves from
 * its node_modules), with `packages` (tarballs or registry specs) installed by plain npm. Returns the directory.
 */
export async function freshProject(packages: readonly string[], prefix = 'eventplane-adopter-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  await writeFile(join(dir, 'package.json'), `${JSON.stringify({ name: 'adopter', private: true, type: 'module' })}\n`)
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error', ...packages], {
    cwd: dir,
    stdio: ['ignore', 'ignore', 'inherit'],
  })
  return dir
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const dest = process.argv[2] ?? (await mkdtemp(join(tmpdir(), 'eventplane-packs-')))
  for (const tarball of await buildAndPack(dest)) console.log(tarball)
}
