/**
 * Run by process-groups.test.ts inside a process group that its test orphans: starts a test
 * nats-server and a service child through the fixtures, freezes both (SIGSTOP) and prints
 * `frozen <pid>`; once the file named by argv[2] exists, thaws and stops them and prints `survived`.
 */
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { startNatsServer } from '../../src/testing/index.ts'
import { spawnServiceProcess } from '../fixtures.ts'

const go = process.argv[2]!
const server = await startNatsServer({ withAuth: false })
const idle = fileURLToPath(new URL('./idle-child.ts', import.meta.url))
const child = spawnServiceProcess(idle, 'idle child', {})
await child.waitForLog('idle')
process.kill(server.pid!, 'SIGSTOP')
child.freeze(true)
console.log(`frozen ${process.pid}`)
// Polls for the test's go-ahead (a file, written once the shell that held the group together has exited).
while (!existsSync(go)) await sleep(20)
process.kill(server.pid!, 'SIGCONT')
child.freeze(false)
await child.kill()
await server.stop()
console.log('survived')
