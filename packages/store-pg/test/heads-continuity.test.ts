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

  test("a grown stream whose event at the earlier head is gone is missing; another tenant's stream of that name never answers for it", async () => {
    const operator = db.connect(ROLES.operator, 1)
    const store = new PgEventStore(operator)
    // initech and globex both have deployment/gap and deployment/twin; the operator reads every tenant.
    for (const tenant of ['initech', 'globex']) {
      const f = factoryFor(tenant)
      for (const id of ['gap', 'twin']) {
        const s = stream(tenant, id)
        await store.append(
          s,
          [1, 2].map((n) => f.intent(s, 'scaled', { n })),
        )
      }
    }
    const heads = async (total: number) => {
      let h = await readHeads(operator, 'initech')
      await eventually(async () => {
        h = await readHeads(operator, 'initech')
        return h.streams.reduce((n, s) => n + s.version, 0) === total
      })
      return h
    }
    const earlier = await heads(4)
    const f = factoryFor('initech')
    for (const id of ['gap', 'twin'])
      await store.append(stream('initech', id), [f.intent(stream('initech', id), 'scaled', { n: 3 })])
    // initech's gap@2 (its earlier head) deleted as a superuser; globex's gap@2 is still there.
    await db.admin.begin(async (tx) => {
      await tx`alter table eventplane.events disable trigger user`
      await tx`delete from eventplane.events where tenant_id = 'initech' and stream_id = 'gap' and stream_version = 2`
      await tx`alter table eventplane.events enable trigger user`
    })
    const conflicts = await headsConflicts(operator, earlier, await heads(6))
    assert.deepEqual(
      conflicts.map((c) => `${c.stream_id}@${c.version} ${c.reason}`),
      ['gap@2 missing'],
    )
  })
})
