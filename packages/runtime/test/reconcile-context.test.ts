import assert from 'node:assert/strict'
import { before, describe, test } from 'node:test'
import { type RecordedEvent, isEventplaneError } from '@eventplane/core'
import { silentLogger } from '@eventplane/bus-nats'
import { PgEventStore, ROLES } from '@eventplane/store-pg'
import { useTestDatabase } from '@eventplane/store-pg/testing'
import { createContext } from '../src/controller/context.ts'
import type { ReconcileContext } from '../src/controller/types.ts'
import { factoryFor, stream } from './helpers.ts'

/** What ControllerRunner hands a controller, built directly: the promises are the context's, not the bus's. */
describe('the reconcile context a controller gets', () => {
  const db = useTestDatabase('ep_reconcile_ctx')
  let intents: PgEventStore
  let facts: PgEventStore
  before(() => {
    intents = new PgEventStore(db.connect(ROLES.intentWriter, 2))
    facts = new PgEventStore(db.connect(ROLES.factWriter, 2))
  })

  const contextFor = (event: RecordedEvent, controller = 'builder', attempt = 1): ReconcileContext =>
    createContext(event, attempt, new AbortController().signal, { controller, store: facts, log: silentLogger })

  /** Appends `run` on `id` as the second event of a correlation chain (not its root) and returns it as recorded. */
  async function childTrigger(id: string): Promise<{ root: RecordedEvent; trigger: RecordedEvent }> {
    const s = stream('acme', id, 'job')
    const f = factoryFor('acme')
    const root = f.intent(s, 'created', {})
    await intents.append(s, [root])
    await intents.append(s, [f.causedBy(root).intent(s, 'run', { n: 1 })])
    const [recordedRoot, trigger] = await facts.readStreamToArray(s)
    return { root: recordedRoot!, trigger: trigger! }
  }

  test('history() is the stream up to and including the trigger, however far it moved on; readStream() is now', async () => {
    const { root, trigger } = await childTrigger('history')
    const s = stream('acme', 'history', 'job')
    await intents.append(s, [factoryFor('acme').intent(s, 'later', {})])
    const ctx = contextFor(trigger)
    assert.deepEqual(
      (await ctx.history()).map((e) => e.event_id),
      [root.event_id, trigger.event_id],
    )
    assert.deepEqual(
      (await ctx.readStream()).map((e) => e.type),
      ['created', 'run', 'later'],
    )
  })

  test('emit refuses an intent among its events, and appends none of them', async () => {
    const { trigger } = await childTrigger('emit-intent')
    const ctx = contextFor(trigger)
    const intent = ctx.factory.intent({ category: 'job', id: 'emit-intent' }, 'sneaked', {})
    await assert.rejects(ctx.emit(ctx.fact('done', {}), intent), (e) => isEventplaneError(e, 'core.invalid_envelope'))
    assert.deepEqual(
      (await facts.readStreamToArray(stream('acme', 'emit-intent', 'job'))).map((e) => e.type),
      ['created', 'run'],
    )
  })

  test('emit appends each fact to its own stream, streams of one category included', async () => {
    const { trigger } = await childTrigger('emit-two')
    const ctx = contextFor(trigger)
    const other = { category: 'job', id: 'emit-two-other' }
    await ctx.emit(ctx.fact('here', {}), ctx.fact('there', {}, { stream: other }))
    assert.deepEqual(
      (await facts.readStreamToArray(stream('acme', 'emit-two', 'job'))).map((e) => e.type),
      ['created', 'run', 'here'],
    )
    assert.deepEqual(
      (await facts.readStreamToArray({ tenant: 'acme', ...other })).map((e) => e.type),
      ['there'],
    )
  })

  test('a retry builds the same fact (id, time, lineage, principal) and the store keeps it once', async () => {
    const { root, trigger } = await childTrigger('retry')
    const first = contextFor(trigger, 'builder', 1).fact('built', { n: 1 })
    const retry = contextFor(trigger, 'builder', 2).fact('built', { n: 1 })
    assert.deepEqual(retry, first)
    assert.equal(first.correlation_id, root.event_id, 'the chain of the trigger, not a new one')
    assert.equal(first.causation_id, trigger.event_id)
    assert.equal(first.caused_by, 'controller:builder')
    assert.equal(first.occurred_at, new Date(trigger.recorded_at).toISOString())
    await contextFor(trigger, 'builder', 1).emit(first)
    await contextFor(trigger, 'builder', 2).emit(retry)
    const built = (await facts.readStreamToArray(stream('acme', 'retry', 'job'))).filter((e) => e.type === 'built')
    assert.equal(built.length, 1)
    assert.notEqual(
      contextFor(trigger, 'auditor').fact('built', { n: 1 }).event_id,
      first.event_id,
      'another controller reacting to the same trigger writes its own fact',
    )
  })
})
