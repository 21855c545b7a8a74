import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { describe, test } from 'node:test'
import { DEFAULT_DATABASE_URL } from '@eventplane/store-pg'
import { checkProtocol, pgTarget } from '../src/pg-target.ts'

describe("checkProtocol: what a slow first connection's port speaks", () => {
  test('the real PostgreSQL server (no TLS: it answers N to the SSLRequest) speaks postgres', async () => {
    const target = pgTarget(process.env.EVENTPLANE_DATABASE_URL || DEFAULT_DATABASE_URL)
    assert.deepEqual(await checkProtocol(target.host, target.port, 5000), { speaks: 'postgres' })
  })

  test('an HTTP server speaks something else, and its answer is quoted', async () => {
    const http = createServer((_, res) => res.end())
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve))
    try {
      const { port } = http.address() as AddressInfo
      const check = await checkProtocol('127.0.0.1', port, 5000)
      assert.deepEqual(check, { speaks: 'other', answer: 'HTTP/1.1 400 Bad Request' })
    } finally {
      http.close()
    }
  })
})
