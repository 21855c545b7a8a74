import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { test } from 'node:test'
import { connectPg } from '@eventplane/store-pg'
import { closePool } from '@eventplane/store-pg/testing'
import { within } from '../packages/bus-nats/test/fixtures.ts'

const ROOT = fileURLToPath(new URL('../', import.meta.url))

/** Runs `bash scripts/demo.sh` (the README's first command) with no EVENTPLANE_* of ours leaking in. */
async function runDemo(): Promise<{ code: number | null; output: string }> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('EVENTPLANE_')))
  const child = spawn('bash', ['scripts/demo.sh'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.on('data', (b: Buffer) => (output += b.toString('utf8')))
  child.stderr.on('data', (b: Buffer) => (output += b.toString('utf8')))
  const code = await within(
    new Promise<number | null>((resolve) => child.once('close', resolve)),
    150_000,
    'the demo to finish',
  ).catch((e: unknown) => {
    child.kill('SIGKILL')
    throw e
  })
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the demo's bold step titles
  return { code, output: output.replace(/\x1b\[[0-9;]*m/g, '') }
}

/** The states printed by `evtctl state deployment_status` (`<id>  <json>` lines), by deployment id. */
function states(output: string): Map<string, Record<string, unknown>> {
  const found = new Map<string, Record<string, unknown>>()
  for (const [, id, json] of output.matchAll(/^\s+(\S+)\s+(\{.*\})$/gm)) found.set(id!, JSON.parse(json!))
  return found
}

// Asserts the domain outcome only: another engineer is changing how the demo sets NATS up.
test('the demo (bash scripts/demo.sh) reconciles, traces, reports status and leaves nothing behind', {
  timeout: 180_000,
}, async (t) => {
  const { code, output } = await runDemo()
  assert.equal(code, 0, `the demo failed:\n${output.slice(-3000)}`)

  const deployments = states(output)
  assert.deepEqual([...deployments.keys()].sort(), ['api', 'old', 'web'], 'the state of each tenant was printed')
  const [web, old, api] = ['web', 'old', 'api'].map((id) => deployments.get(id)!)
  assert.deepEqual([web!.status, web!.replicas, web!.deleted], ['running', 5, false], 'web created, then scaled to 5')
  assert.deepEqual([old!.status, old!.deleted], ['deleted', true], 'old created, then deleted')
  assert.deepEqual(old!.finalizers, [], 'deleted only once every finalizer was removed')
  assert.deepEqual([api!.status, api!.replicas], ['running', 3], "globex's api created")
  assert.match(output, /^\s+v7\s+@\d+\s+fact\s+scaled\s/m, 'the controller recorded the scale as a fact')

  // The trace: the create intent, and under it the facts the controller derived from it.
  const lines = output.split('\n')
  const root = lines.findIndex((l) => /^\s*intent\s+create\s+acme\/deployment\/web v1\s/.test(l))
  assert.ok(root >= 0, 'the trace starts at the create intent')
  const indent = (l: string): number => l.length - l.trimStart().length
  const children = []
  for (const line of lines.slice(root + 1)) {
    if (indent(line) <= indent(lines[root]!)) break
    children.push(line)
  }
  assert.deepEqual(
    children.map((l) => /^\s+fact\s+(\S+)\s+acme\/deployment\/web v\d+ .* by controller:deployments$/.exec(l)?.[1]),
    ['scheduled', 'finalizer_added', 'finalizer_added', 'status_changed'],
    'the trace shows the facts indented under the intent that caused them',
  )

  assert.match(output, /^\s+relay\s+default: active/m, 'status shows the relay')
  assert.match(output, /^\s+projection\s+deployment_status v1: checkpoint/m, 'status shows the projections')
  assert.match(output, /evtctl up stopped \(exit 0\)/, 'evtctl up stopped cleanly')
  const database = /migrate a fresh database \((\w+)\)/.exec(output)?.[1]
  assert.ok(database, 'the demo names its database')
  const admin = connectPg(process.env.EVENTPLANE_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres', {
    max: 1,
  })
  try {
    const left = await admin`select 1 from pg_database where datname = ${database}`
    assert.equal(left.length, 0, 'the demo dropped its database')
  } finally {
    await closePool(admin)
  }
  t.diagnostic(/demo took [\d.]+ s/.exec(output)?.[0] ?? '')
})
