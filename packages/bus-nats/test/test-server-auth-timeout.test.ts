import assert from 'node:assert/strict'
import { type AddressInfo, type Socket, connect as tcpConnect, createServer } from 'node:net'
import { after, before, describe, test } from 'node:test'
import { startNatsServer } from '../src/testing/index.ts'
import type { TestNatsServer } from '../src/testing/index.ts'

/** How long the proxy holds a client's first bytes (its CONNECT, the signed nonce): past nats-server's 2 s default. */
const HOLD_MS = 3_000

/**
 * A loopback TCP proxy to `port` that passes the server's bytes at once and a client's only
 * `HOLD_MS` after it connected: a client too slow to authenticate, as on a loaded machine.
 */
async function slowClientProxy(port: number): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>()
  const proxy = createServer((client) => {
    const upstream = tcpConnect(port, '127.0.0.1')
    for (const s of [client, upstream]) {
      sockets.add(s)
      s.on('error', () => s.destroy())
      s.on('close', () => sockets.delete(s))
    }
    client.on('close', () => upstream.destroy())
    upstream.on('close', () => client.destroy())
    upstream.pipe(client)
    client.pause()
    setTimeout(() => client.pipe(upstream), HOLD_MS)
  })
  await new Promise<void>((listening) => proxy.listen(0, '127.0.0.1', listening))
  return {
    port: (proxy.address() as AddressInfo).port,
    close: async () => {
      for (const s of sockets) s.destroy()
      await new Promise((closed) => proxy.close(closed))
    },
  }
}

describe('the test nats-server', () => {
  let server: TestNatsServer
  before(async () => {
    server = await startNatsServer()
  })
  after(async () => {
    await server?.stop()
  })

  test('accepts a credentialed connection that authenticates after 3 s (a loaded machine), not only within 2 s', async () => {
    const proxy = await slowClientProxy(server.port)
    try {
      const started = Date.now()
      const nc = await server.connect('relay', { servers: `nats://127.0.0.1:${proxy.port}`, reconnect: false })
      assert.ok(Date.now() - started >= HOLD_MS, 'the proxy held the CONNECT')
      await nc.flush()
      await nc.close()
    } finally {
      await proxy.close()
    }
  })
})
