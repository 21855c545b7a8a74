import assert from 'node:assert/strict'
import { generateKeyPairSync } from 'node:crypto'
import { describe, test } from 'node:test'
import { isEventplaneError } from '@eventplane/core'
import { type ChainHeads, checkHeads, headsDigest, headsToFile, signHeads } from '@eventplane/store-pg'

const hash = (byte: number) => Buffer.alloc(32, byte)
const streams = [
  { category: 'deployment', stream_id: 'api', version: 3, hash: hash(1) },
  { category: 'deployment', stream_id: 'web', version: 5, hash: hash(2) },
]
const heads: ChainHeads = { tenant: 'acme', tx_id: 812n, global_position: 40n, streams, digest: headsDigest(streams) }
const keys = generateKeyPairSync('ed25519')
const other = generateKeyPairSync('ed25519')
const pem = (k: { export(o: object): string | Buffer }) => k.export({ type: 'spki', format: 'pem' }) as string

/** A signed heads file as JSON, changed by `edit` the way someone holding the file (not the key) could. */
const signedFile = (edit: (f: Record<string, unknown>) => void = () => {}) => {
  const f = JSON.parse(JSON.stringify(headsToFile(signHeads(heads, keys.privateKey))))
  edit(f)
  return f
}
const refused = (f: unknown, key?: string) =>
  assert.throws(
    () => checkHeads(f, key),
    (e) => isEventplaneError(e, 'store.chain_unverifiable'),
  )

describe('a heads file is trusted only as signed', () => {
  test('the signed file passes, with and without its pinned key', () => {
    assert.deepEqual(checkHeads(signedFile(), pem(keys.publicKey)).streams, streams)
    assert.equal(checkHeads(signedFile()).tenant, 'acme')
  })

  test("a stream's version changed, with the digest recomputed over the new lines, breaks the signature", () => {
    refused(
      signedFile((f) => {
        const list = f.streams as { version: number }[]
        list[1]!.version = 4
      }),
    )
    const edited = signedFile((f) => {
      const list = f.streams as { category: string; stream_id: string; version: number; hash: string }[]
      list[1]!.version = 4
      f.digest = headsDigest(list.map((s) => ({ ...s, hash: Buffer.from(s.hash, 'hex') }))).toString('hex')
    })
    refused(edited)
  })

  test("the same heads relabelled as another tenant's do not verify", () => {
    refused(
      signedFile((f) => {
        f.tenant = 'globex'
      }),
    )
  })

  test('every part of a head and the point they cover are signed: an edited hash, stream id, tx_id or position is refused', () => {
    type Line = { category: string; stream_id: string; version: number; hash: string }
    /** Edits a stream line and recomputes the digest over the edited lines, as someone without the key could. */
    const rehashed = (edit: (s: Line) => void) =>
      signedFile((f) => {
        const list = f.streams as Line[]
        edit(list[1]!)
        f.digest = headsDigest(list.map((s) => ({ ...s, hash: Buffer.from(s.hash, 'hex') }))).toString('hex')
      })
    refused(
      rehashed((s) => {
        s.hash = 'ab'.repeat(32)
      }),
    )
    refused(
      rehashed((s) => {
        s.stream_id = 'www'
      }),
    )
    refused(
      signedFile((f) => {
        f.tx_id = '813'
      }),
    )
    refused(
      signedFile((f) => {
        f.global_position = '41'
      }),
    )
    // Unsigned, the digest alone covers the lines: an edited hash without a recomputed digest is refused too.
    const unsigned = JSON.parse(JSON.stringify(headsToFile(heads)))
    unsigned.streams[0].hash = 'cd'.repeat(32)
    refused(unsigned)
  })

  test('a file signed by another key is refused when a public key is pinned', () => {
    refused(signedFile(), pem(other.publicKey))
  })
})
