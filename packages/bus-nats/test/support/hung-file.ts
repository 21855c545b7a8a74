/**
 * A test file that hangs, run by fixture-children-die.test.ts: starts a test nats-server and a service child
 * through the fixtures, writes `<nats-server pid> <service child pid>` to the file named by HUNG_FILE_PIDS, then
 * waits forever, until whoever runs it kills it.
 */
import { writeFileSync } from 'node:fs'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { startNatsServer } from '../../src/testing/index.ts'
import { spawnServiceProcess } from '../fixtures.ts'

test('hangs with a nats-server and a service child running', async () => {
  const server = await startNatsServer({ withAuth: false })
  const child = spawnServiceProcess(fileURLToPath(new URL('./idle-child.ts', import.meta.url)), 'idle child', {})
  await child.waitForLog('idle')
  writeFileSync(process.env.HUNG_FILE_PIDS!, `${server.pid} ${child.process.pid}\n`)
  await new Promise(() => setInterval(() => {}, 60_000))
})
