import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { before, describe, test } from 'node:test'
import type { ValidEnvelope } from '@eventplane/core'
import { PgEventStore, ROLES, causationInChain } from '@eventplane/store-pg'
import { useTestDatabase } from '@eventplane/store-pg/testing'
import { factoryFor, stream } from './helpers.ts'

describe('causationInChain: lineage within one tenant, under its row level security', () => {
  const db = useTestDatabase('ep_lineage')
  let acmeRoot: ValidEnvelope
  let globexRoot: ValidEnvelope

  before(async () => {
    const writer = new PgEventStore(db.connect(ROLES.intentWriter, 2))
    acmeRoot = factoryFor('acme').intent(stream('acme', 'web'), 'created', {})
    globexRoot = factoryFor('globex').intent(stream('globex', 'web'), 'created', {})
    await writer.append(stream('acme', 'web'), [acmeRoot])
    await writer.append(stream('globex', 'web'), [globexRoot])
  })

  test("for every role, even those that read across tenants, another tenant's event is as absent as a missing one", async () => {
    for (const role of [ROLES.intentWriter, ROLES.factWriter, ROLES.reader, ROLES.relay, ROLES.operator]) {
      const sql = db.connect(role, 1)
      const ask = (causation: string, correlation: string) => causationInChain(sql, 'acme', causation, correlation)
      assert.equal(await ask(acmeRoot.event_id, acmeRoot.correlation_id), true, `${role}: its own chain`)
      assert.equal(await ask(acmeRoot.event_id, randomUUID()), false, `${role}: its own event, another chain`)
      assert.equal(await ask(globexRoot.event_id, globexRoot.correlation_id), false, `${role}: globex's event`)
      const absent = randomUUID()
      assert.equal(await ask(absent, absent), false, `${role}: no such event`)
    }
  })
})
