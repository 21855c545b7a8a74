import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import fc from 'fast-check'
import { type NatsConnection, MsgHdrsImpl } from '@nats-io/transport-node'
import { startNatsServer, type TestNatsServer } from '../src/testing/index.ts'
import { decodeHeaderBlock, receivedHeaders } from '../src/header-block.ts'

const utf8 = new TextEncoder()

/** What nats.js made of a block: its map, code and description, or the error it threw. */
function outcome(decode: (b: Uint8Array) => MsgHdrsImpl, bytes: Uint8Array): unknown {
  try {
    const h = decode(bytes)
    return { headers: [...h.headers], code: h.code, description: h.description }
  } catch (e) {
    return { error: (e as Error).message }
  }
}

describe('header blocks', () => {
  test('a header block decodes to what nats.js makes of it: names as written, values trimmed, repeats kept', () => {
    const name = fc.oneof(
      fc.constantFrom('Nats-Msg-Id', 'Eventplane-Tenant', 'traceparent', 'x', 'X', 'a b', 'é', '', 'K\t'),
      fc.string({ unit: fc.constantFrom('a', 'B', '-', '_', '.', ' ', '\u007f', '!', '~'), maxLength: 6 }),
    )
    const value = fc.string({ unit: fc.constantFrom('v', '1', ' ', '\t', ':', 'é', '-'), maxLength: 8 })
    const line = fc.oneof(
      fc.tuple(name, fc.constantFrom(':', ': ', ' :'), value).map(([n, c, v]) => `${n}${c}${v}`),
      fc.constantFrom('', 'no colon here'),
    )
    const first = fc.constantFrom('NATS/1.0', 'NATS/1.0 503', 'NATS/1.0 408 Request Timeout', 'NATS/1.0 100 Idle')
    fc.assert(
      fc.property(first, fc.array(line, { maxLength: 6 }), (status, lines) => {
        const bytes = utf8.encode(`${[status, ...lines].join('\r\n')}\r\n\r\n`)
        assert.deepEqual(
          outcome(decodeHeaderBlock, bytes),
          outcome((b) => MsgHdrsImpl.decode(b), bytes),
        )
      }),
      { numRuns: 5000 },
    )
  })

  test('the relay headers of a block, by name', () => {
    const bytes = utf8.encode(
      'NATS/1.0\r\nNats-Msg-Id: a\r\nEventplane-Tenant:  acme \r\nNats-Msg-Id: b\r\ntraceparent:00-x\r\n\r\n',
    )
    const h = decodeHeaderBlock(bytes)
    assert.deepEqual(h.headers.get('Nats-Msg-Id'), ['a', 'b'])
    assert.equal(h.get('Eventplane-Tenant'), 'acme')
    assert.equal(h.get('traceparent'), '00-x')
  })
})

describe('headers of a received message', () => {
  let server: TestNatsServer
  let nc: NatsConnection

  before(async () => {
    server = await startNatsServer({ withAuth: false })
    nc = await server.connect('operator', { name: 'header-block' })
  })

  after(async () => {
    await nc?.close()
    await server?.stop()
  })

  test('are decoded from its bytes once, without nats.js decode, and are what its own headers getter returns', async () => {
    const sub = nc.subscribe('hb.>', { max: 2 })
    const sent = new MsgHdrsImpl()
    sent.append('Eventplane-Tenant', 'acme')
    sent.append('traceparent', '00-abc-def-01')
    nc.publish('hb.one', utf8.encode('{}'), { headers: sent })
    nc.publish('hb.two', utf8.encode('{}'))
    const received = []
    for await (const m of sub) received.push(m)
    const [withHeaders, without] = received
    const decode = MsgHdrsImpl.decode
    let decodes = 0
    MsgHdrsImpl.decode = (b: Uint8Array) => {
      decodes += 1
      return decode.call(MsgHdrsImpl, b)
    }
    try {
      const h = receivedHeaders(withHeaders!)
      assert.equal(decodes, 0, 'nats.js decode was not used for a plain block')
      assert.equal(h?.get('Eventplane-Tenant'), 'acme')
      assert.equal(h?.get('traceparent'), '00-abc-def-01')
      assert.equal(withHeaders!.headers, h, 'the getter returns the same headers, not a second decode')
      assert.equal(receivedHeaders(without!), undefined)
      assert.equal(decodes, 0)
      // Headers nats.js already decoded (its getter read first) are those: not decoded again into another object.
      const again = nc.subscribe('hb.again', { max: 1 })
      nc.publish('hb.again', utf8.encode('{}'), { headers: sent })
      for await (const m of again) {
        const read = m.headers
        assert.equal(receivedHeaders(m), read)
      }
    } finally {
      MsgHdrsImpl.decode = decode
    }
  })
})
