import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import { isEventplaneError } from '@eventplane/core'
import { eventually } from '@eventplane/store-pg/testing'
import { connect } from '@nats-io/transport-node'
import { natsAuth } from '../src/nats-auth.ts'
import { natsFailure } from '../src/nats-errors.ts'
import { OWN_PROCESS_GROUP, dieWithParent, findNatsServerBinary, reapOnExit } from '../src/testing/index.ts'
import { exited, freePort, greets } from '../src/testing/nats-process.ts'

/**
 * The user-and-password form of a service's NATS settings, against a plain
 * nats-server that takes exactly one user (the account-model test servers
 * take creds files only), and a creds file that cannot be read.
 */
describe('natsAuth: user and password, creds files', () => {
  const user = 'svc'
  const password = randomBytes(12).toString('hex')
  const name = `ep-auth-${randomBytes(4).toString('hex')}`
  let server: ChildProcess
  let url = ''

  before(async () => {
    const port = await freePort()
    url = `nats://127.0.0.1:${port}`
    const args = ['-a', '127.0.0.1', '-p', String(port), '-n', name, '--user', user, '--pass', password]
    server = spawn(...dieWithParent(findNatsServerBinary(), args), { stdio: 'ignore', ...OWN_PROCESS_GROUP })
    reapOnExit(server)
    await eventually(() => greets(port, name), 30_000, 'the nats-server to listen')
  })
  after(async () => {
    server?.kill('SIGKILL')
    if (server) await exited(server)
  })

  test('a user and its password connect; the same user with another password is refused', async () => {
    const nc = await connect({ servers: url, ...natsAuth({ natsUser: user, natsPassword: password }) })
    await nc.flush()
    await nc.close()
    await assert.rejects(
      connect({ servers: url, ...natsAuth({ natsUser: user, natsPassword: 'wrong' }) }).catch((e: unknown) => {
        throw natsFailure(e, 'connect')
      }),
      (e: unknown) => isEventplaneError(e, 'bus.auth_failed'),
    )
  })

  test('a creds file that cannot be read is bus.config naming it, before any connection', () => {
    assert.throws(
      () => natsAuth({ natsCreds: '/nonexistent/service.creds', natsUser: user }),
      (e: unknown) => isEventplaneError(e, 'bus.config') && e.message.includes('/nonexistent/service.creds (ENOENT)'),
    )
  })
})
