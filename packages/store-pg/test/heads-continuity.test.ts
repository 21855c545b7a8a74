import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import type { Sql } from 'postgres'
import { PgEventStore, ROLES, headsConflicts, readHeads } from '@eventplane/store-pg'
import { eventually, useTestDatabase } from '@eventplane/store-pg/testing'
import { factoryFor, rechain, stream } from './helpers.ts'

// headsConflicts (a heads publisher's check before it publishes newer heads):
// every stream of the earlier heads must still have, at the earlier head's
// version, the hash it had then, whether it grew since or not.

/** Rewrites version `v` of stream `id` and recomputes the hashes from there on, as an attacker who knows the scheme would. */
async function rewrite(admin: Sql, id: string, v: number): Promise<void> {
  await admin.begin(async (tx) => {
    await tx`alter table eventplane.events disable trigger user`
    await tx`update eventplane.events set data = '{"rewritten": true}' where stream_id = ${id} and stream_version = ${v}`
    await rechain(tx, id, v)
    await tx`alter table eventplane.events enable trigger user`
  })
}

describe('heads continuity', () => {
  const db = useTestDatabase('ep_heads_continuity')

  test('a stream rewritten before its earlier head is a conflict, grown since or not; clean growth is none', async () => {
    const operator = db.connect(ROLES.operator, 1)
    const store = new PgEventStore(operator)
    const f = factoryFor('acme')
    const ids = ['clean', 'same', 'grown', 'shrunk']
    for (const id of ids) {
      const s = stream('acme', id)
      await store.append(
        s,
        [1, 2, 3].map((n) => f.intent(s, 'scaled', { n })),
      )
    }
    // Heads cover what the gap-safe read returns: wait until no transaction elsewhere holds them back.
    const heads = async (total: number) => {
      let h = await readHeads(operator, 'acme')
      await eventually(async () => {
        h = await readHeads(operator, 'acme')
        return h.streams.reduce((n, s) => n + s.version, 0) === total
      })
      return h
    }
    const earlier = await heads(12)
    await rewrite(db.admin, 'same', 2)
    await rewrite(db.admin, 'grown', 2)
    for (const id of ['clean', 'grown']) {
      await store.append(stream('acme', id), [f.intent(stream('acme', id), 'scaled', { n: 4 })])
    }
    await db.admin.begin(async (tx) => {
      await tx`alter table eventplane.events disable trigger user`
      await tx`delete from eventplane.events where stream_id = 'shrunk' and stream_version = 3`
      await tx`alter table eventplane.events enable trigger user`
    })
    const conflicts = await headsConflicts(operator, earlier, await heads(13))
    assert.deepEqual(conflicts.map((c) => `${c.stream_id}@${c.version} ${c.reason}`).sort(), [
      'grown@3 rewritten',
      'same@3 rewritten',
      'shrunk@3 missing',
    ])
  })
})
