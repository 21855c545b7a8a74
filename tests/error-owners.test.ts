/**
 * One error mapper per transport (issue 12): PostgreSQL errors are
 * classified only in store-pg, NATS errors only in bus-nats's one mapper,
 * and `cli.*` codes exist only in evtctl. Reads the sources.
 */
import assert from 'node:assert/strict'
import { readFile, readdir } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('../', import.meta.url))

async function sources(dir: string): Promise<string[]> {
  const out: string[] = []
  for (const entry of await readdir(join(ROOT, dir), { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) out.push(...(await sources(path)))
    else if (entry.name.endsWith('.ts')) out.push(path)
  }
  return out
}

async function offenders(pattern: RegExp, allowed: (file: string) => boolean): Promise<string[]> {
  const found: string[] = []
  for (const pkg of await readdir(join(ROOT, 'packages'))) {
    for (const file of await sources(join('packages', pkg, 'src')).catch(() => [])) {
      if (allowed(file)) continue
      const text = await readFile(join(ROOT, file), 'utf8')
      for (const [i, line] of text.split('\n').entries())
        if (pattern.test(line)) found.push(`${relative(ROOT, join(ROOT, file))}:${i + 1}: ${line.trim()}`)
    }
  }
  return found
}

test('cli.* codes exist only in evtctl', async () => {
  assert.deepEqual(await offenders(/['"`]cli\.[a-z_]+['"`]/, (f) => f.startsWith('packages/evtctl/')), [])
})

test('nats.js error classes are classified only by bus-nats/src/nats-errors.ts', async () => {
  const classes =
    /\b(PermissionViolationError|AuthorizationError|UserAuthenticationExpiredError|TimeoutError|NoRespondersError|ConnectionError|ClosedConnectionError|jserrors)\b|\berrors as\b/
  // claims-push asks only "did any resolver answer" to word its own bus.unavailable.
  const allowed = (f: string) =>
    f === 'packages/bus-nats/src/nats-errors.ts' || f === 'packages/bus-nats/src/nats-config/claims-push.ts'
  assert.deepEqual(await offenders(classes, allowed), [])
})

test('SQLSTATEs are read only in store-pg', async () => {
  const sqlstate = /['"`](?:0[0-9A-Z]|[1-5][0-9A-Z]|F0|HV|P0|XX)[0-9A-Z]{3}['"`]/
  assert.deepEqual(await offenders(sqlstate, (f) => f.startsWith('packages/store-pg/')), [])
})
