import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { type EventplaneError, isEventplaneError } from '@eventplane/core'
import { PgEventStore, ROLES, checkImportChain, exportEvents, importEvents } from '@eventplane/store-pg'
import { useTestDatabase } from '@eventplane/store-pg/testing'
import { factoryFor, stream } from './helpers.ts'

// checkImportChain (an import's check before it writes): a file that
// continues a stream already in the database links its first line to the
// database's stored event before it; anything else is store.chain_broken
// naming the line.

async function collect(lines: AsyncIterable<string>): Promise<string[]> {
  const out: string[] = []
  for await (const l of lines) out.push(l)
  return out
}

/** The line number a chain_broken refusal names, or what else happened. */
async function refusedAt(check: Promise<unknown>): Promise<number | string> {
  return check.then(
    () => 'accepted',
    (e: unknown) => (isEventplaneError(e, 'store.chain_broken') ? (e as EventplaneError).details.line : String(e)),
  ) as Promise<number | string>
}

describe('an import continues a stream the database already holds, and only through its stored chain', () => {
  const source = useTestDatabase('ep_import_src')
  const target = useTestDatabase('ep_import_dst')

  test('lines 2..3 over an imported version 1 pass; a gap, an edit or a version the database lacks is refused', async () => {
    const s = stream('acme', 'web')
    const f = factoryFor('acme')
    const from = new PgEventStore(source.connect(ROLES.operator, 1))
    await from.append(s, [f.intent(s, 'created', { n: 1 })])
    await from.append(s, [f.fact(s, 'scaled', { n: 2 }), f.fact(s, 'scaled', { n: 3 })])
    const [l1, l2, l3] = await collect(exportEvents(from, { tenant: 'acme', stream: s, includeActor: true }))
    const dst = target.connect(ROLES.operator, 1)

    // Nothing of the stream in the target yet: a file starting at version 2 has no predecessor.
    assert.equal(await refusedAt(checkImportChain(dst, [l2!, l3!])), 1)
    assert.deepEqual(await importEvents(new PgEventStore(dst), [l1!]), { imported: 1, skipped: 0, conflicts: [] })

    // Version 1 is stored now: the file's first line links to it.
    assert.deepEqual(await checkImportChain(dst, [l2!, l3!]), { events: 2, streams: 1 })
    // A line dropped inside the file, a line edited, a line that skips the stored version.
    assert.equal(await refusedAt(checkImportChain(dst, [l1!, l3!])), 2)
    const edited = JSON.stringify({ ...JSON.parse(l2!), data: { n: 20 } })
    assert.equal(await refusedAt(checkImportChain(dst, [edited, l3!])), 1)
    assert.equal(await refusedAt(checkImportChain(dst, [l3!])), 1)
    const [row] = await target.admin<{ n: number }[]>`select count(*)::int as n from eventplane.events`
    assert.equal(row!.n, 1, 'the checks wrote nothing')
  })
})
