import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { PgEventStore, ROLES, verifyLog } from '@eventplane/store-pg'
import { useTestDatabase } from '@eventplane/store-pg/testing'
import { factoryFor, stream } from './helpers.ts'

// The canonical form covers every field an event stores (docs/architecture.md
// "The hash chain"): a superuser changing any one of them in place, hash left
// as it was, breaks that stream's chain at that event. chain-tamper.test.ts
// covers data, caused_by and the versions; these are the rest.

/** The SQL that changes one field of the stream's version 2 (a different valid value each). */
const TAMPER: Record<string, string> = {
  kind: `kind = 'fact'`,
  type: `type = 'renamed'`,
  schema_version: `schema_version = 2`,
  occurred_at: `occurred_at = occurred_at + interval '1 microsecond'`,
  correlation_id: `correlation_id = gen_random_uuid()`,
  causation_id: `causation_id = gen_random_uuid()`,
  event_id: `event_id = gen_random_uuid()`,
}

describe('the hash chain covers every stored field', () => {
  const db = useTestDatabase('ep_chain_fields')

  test('any one field of an event changed in place breaks its stream at that event; the untouched stream verifies', async () => {
    const operator = db.connect(ROLES.operator, 1)
    const store = new PgEventStore(operator)
    for (const id of ['untouched', ...Object.keys(TAMPER)]) {
      const s = stream('acme', id.replaceAll('_', '-'))
      const root = factoryFor('acme').intent(s, 'created', { n: 1 })
      const f = factoryFor('acme').causedBy(root)
      await store.append(s, [root, f.intent(s, 'scaled', { n: 2 }), f.intent(s, 'scaled', { n: 3 })])
    }
    assert.equal((await verifyLog(operator, { tenant: 'acme' })).intact, true)
    await db.admin.begin(async (tx) => {
      await tx`alter table eventplane.events disable trigger user`
      for (const [field, set] of Object.entries(TAMPER)) {
        await tx.unsafe(
          `update eventplane.events set ${set} where stream_id = '${field.replaceAll('_', '-')}' and stream_version = 2`,
        )
      }
      await tx`alter table eventplane.events enable trigger user`
    })
    const result = await verifyLog(operator, { tenant: 'acme' })
    assert.deepEqual(
      Object.fromEntries(result.breaks.map((b) => [b.stream_id, b.version])),
      Object.fromEntries(Object.keys(TAMPER).map((field) => [field.replaceAll('_', '-'), 2])),
    )
  })

  test('a whole stream relabelled to another tenant, category or id breaks at its first event', async () => {
    const operator = db.connect(ROLES.operator, 1)
    const store = new PgEventStore(operator)
    const f = factoryFor('globex')
    for (const id of ['to-tenant', 'to-category', 'to-id']) {
      const s = stream('globex', id)
      await store.append(s, [f.intent(s, 'created', { n: 1 }), f.intent(s, 'scaled', { n: 2 })])
    }
    await db.admin.begin(async (tx) => {
      await tx`alter table eventplane.events disable trigger user`
      await tx`update eventplane.events set tenant_id = 'initech' where stream_id = 'to-tenant'`
      await tx`update eventplane.events set category = 'renamed' where stream_id = 'to-category'`
      await tx`update eventplane.events set stream_id = 'renamed-id' where stream_id = 'to-id'`
      await tx`alter table eventplane.events enable trigger user`
    })
    const breaks = async (tenant: string) =>
      (await verifyLog(operator, { tenant })).breaks.map((b) => `${b.category}/${b.stream_id}@${b.version}`).sort()
    assert.deepEqual(await breaks('globex'), ['deployment/renamed-id@1', 'renamed/to-category@1'])
    assert.deepEqual(await breaks('initech'), ['deployment/to-tenant@1'])
  })
})
