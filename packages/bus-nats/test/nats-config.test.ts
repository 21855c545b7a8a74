import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import { generateNatsConfig } from '../src/nats-config/server-config.ts'
import { startNatsServer } from '../src/testing/index.ts'
import { REPO_ROOT } from './fixtures.ts'

/** The settings of a config text: its lines without comments, blank lines and indentation. */
const settings = (text: string): string[] =>
  text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))

/** The addresses sockets listen on at `port` (Linux /proc/net/tcp and tcp6; IPv4 as dotted quads). */
function listenersOn(port: number): string[] {
  const found: string[] = []
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(file, 'utf8').split('\n').slice(1)) {
      const [, local, , state] = line.trim().split(/\s+/)
      if (local === undefined || state !== '0A') continue // 0A: LISTEN
      const [address, hexPort] = local.split(':') as [string, string]
      if (Number.parseInt(hexPort, 16) !== port) continue
      found.push(
        address.length === 8
          ? (address.match(/../g) ?? [])
              .map((b) => Number.parseInt(b, 16))
              .reverse()
              .join('.')
          : `[${address}]`,
      )
    }
  }
  return found
}

describe('the nats-server config', () => {
  test('infra/nats/nats-server.conf.example holds exactly the settings generateNatsConfig writes (nats-setup)', () => {
    const example = readFileSync(join(REPO_ROOT, 'infra/nats/nats-server.conf.example'), 'utf8')
    const generated = generateNatsConfig({
      storeDir: '/var/lib/eventplane/jetstream',
      port: 4222,
      accounts: {
        operatorJwt: '<operator JWT>',
        systemAccount: '<SYS account public key>',
        preload: {
          '<SYS account public key>': '<SYS account JWT>',
          '<EVENTPLANE account public key>': '<EVENTPLANE account JWT>',
        },
        resolverDir: '/var/lib/eventplane/accounts',
      },
    })
    assert.deepEqual(settings(example), settings(generated))
  })

  test('a server started from the generated config listens on loopback only', async () => {
    const server = await startNatsServer()
    try {
      assert.deepEqual(listenersOn(server.port), ['127.0.0.1'])
    } finally {
      await server.stop()
    }
  })
})
