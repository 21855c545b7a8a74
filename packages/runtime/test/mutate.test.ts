import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import {
  EventFactory,
  type EventEnvelope,
  type RecordedEvent,
  SchemaRegistry,
  isEventplaneError,
} from '@eventplane/core'
import { KeyedQueue } from '../src/controller/keyed-queue.ts'
import { factId } from '../src/controller/fact-ids.ts'
import {
  addFinalizer,
  completeDeletion,
  registerResourceSchemas,
  removeFinalizer,
  requestDeletion,
  setStatus,
} from '../src/mutate.ts'
import { readyToDelete, resourceStateOf } from '../src/resource-state.ts'

let position = 0n
const recorded = (e: EventEnvelope, version: number): RecordedEvent => ({
  ...e,
  stream_version: version,
  global_position: ++position,
  tx_id: position,
  recorded_at: new Date().toISOString(),
})
const log = (events: EventEnvelope[]): RecordedEvent[] => events.map((e, i) => recorded(e, i + 1))

describe('mutate: status and finalizers only through facts', () => {
  const f = EventFactory.forTenant('acme', {
    causedBy: 'controller:test',
    registry: registerResourceSchemas(new SchemaRegistry()),
  })
  const s = { category: 'deployment', id: 'web' }

  test('the resource state is a reduction of the mutate facts', () => {
    const state = resourceStateOf(
      log([
        setStatus(f, s, 'pending'),
        addFinalizer(f, s, 'dns-cleanup'),
        addFinalizer(f, s, 'volume-cleanup'),
        addFinalizer(f, s, 'dns-cleanup'),
        setStatus(f, s, 'running', 'scheduled'),
      ]),
    )
    assert.deepEqual(state, {
      status: 'running',
      reason: 'scheduled',
      finalizers: ['dns-cleanup', 'volume-cleanup'],
      deletionRequested: false,
      deleted: false,
    })
  })

  test('the facts keep the type names a log written earlier holds: status_changed … deleted fold as before', () => {
    // Mutation audit 2026-12-02 (mutrand): a renamed constant changed what is appended and folded, unseen.
    const plain = EventFactory.forTenant('acme', { causedBy: 'controller:test' })
    const stored = [
      plain.fact(s, 'status_changed', { status: 'running', reason: 'up' }),
      plain.fact(s, 'finalizer_added', { name: 'dns-cleanup' }),
      plain.fact(s, 'finalizer_added', { name: 'volume-cleanup' }),
      plain.fact(s, 'finalizer_removed', { name: 'volume-cleanup' }),
      plain.fact(s, 'deletion_requested', {}),
    ]
    assert.deepEqual(resourceStateOf(log(stored)), {
      status: 'running',
      reason: 'up',
      finalizers: ['dns-cleanup'],
      deletionRequested: true,
      deleted: false,
    })
    assert.equal(resourceStateOf(log([...stored, plain.fact(s, 'deleted', {})])).deleted, true)
    const written = [setStatus(f, s, 'x'), addFinalizer(f, s, 'n'), removeFinalizer(f, s, 'n'), requestDeletion(f, s)]
    assert.deepEqual(
      written.map((e) => e.type),
      ['status_changed', 'finalizer_added', 'finalizer_removed', 'deletion_requested'],
    )
    const done = completeDeletion(f, s, resourceStateOf(log([requestDeletion(f, s)])))
    assert.equal(done.type, 'deleted')
  })

  test('deletion completes only when deletion was requested and no finalizer is left', () => {
    const events = [addFinalizer(f, s, 'dns-cleanup'), addFinalizer(f, s, 'volume-cleanup')]
    assert.throws(
      () => completeDeletion(f, s, resourceStateOf(log(events))),
      (e) => isEventplaneError(e, 'runtime.finalizers_pending'),
    )
    events.push(requestDeletion(f, s), removeFinalizer(f, s, 'dns-cleanup'))
    const waiting = resourceStateOf(log(events))
    assert.equal(readyToDelete(waiting), false)
    assert.throws(() => completeDeletion(f, s, waiting), /volume-cleanup/)
    events.push(removeFinalizer(f, s, 'volume-cleanup'))
    const ready = resourceStateOf(log(events))
    assert.equal(readyToDelete(ready), true)
    events.push(completeDeletion(f, s, ready))
    const gone = resourceStateOf(log([...events, setStatus(f, s, 'running')]))
    assert.equal(gone.deleted, true)
    assert.equal(gone.status, null, 'nothing changes after deleted')
    assert.throws(
      () => completeDeletion(f, s, gone),
      (e) => isEventplaneError(e, 'runtime.finalizers_pending'),
    )
  })

  test('mutate facts are checked against their schemas and the factory tenant', () => {
    assert.throws(
      () => setStatus(f, s, 'bad status'),
      (e) => isEventplaneError(e, 'core.invalid_name'),
    )
    assert.throws(
      () => addFinalizer(f, { ...s, tenant: 'globex' }, 'x'),
      (e) => isEventplaneError(e, 'core.tenant_mismatch'),
    )
    assert.throws(
      () => addFinalizer(f, s, 'a.b'),
      (e) => isEventplaneError(e, 'core.invalid_name'),
    )
  })

  test('an intent of a mutate fact type changes no resource state; only a fact does', () => {
    const wish = recorded(f.intent(s, 'status_changed', { status: 'running' }), 1)
    assert.deepEqual(resourceStateOf([wish]), resourceStateOf([]))
    const fact = recorded(setStatus(f, s, 'running'), 2)
    assert.equal(resourceStateOf([wish, fact]).status, 'running')
  })

  test('the resource state follows the log alone: finalizers in any order, a status without reason clears it', () => {
    const added = (...names: string[]) => resourceStateOf(log(names.map((n) => addFinalizer(f, s, n))))
    assert.deepEqual(added('volume-cleanup', 'dns-cleanup'), added('dns-cleanup', 'volume-cleanup'))
    assert.equal(JSON.stringify(added('b', 'c', 'a')), JSON.stringify(added('a', 'b', 'c')), 'equal states, equal JSON')
    const state = resourceStateOf(log([setStatus(f, s, 'failed', 'oom'), setStatus(f, s, 'running')]))
    assert.deepEqual([state.status, state.reason], ['running', null])
  })

  test('the mutate fact schemas refuse extra fields and names that are not tokens; so do the helpers without a registry', () => {
    const registry = registerResourceSchemas(new SchemaRegistry())
    const violation = (type: string, data: Record<string, unknown>): void =>
      assert.throws(
        () => registry.validate(type, 1, data),
        (e) => isEventplaneError(e, 'core.schema_violation'),
        `${type} ${JSON.stringify(data)}`,
      )
    violation('status_changed', { status: 'running', owner: 'x' })
    violation('finalizer_added', { name: 'a.b' })
    violation('finalizer_removed', { name: 'a b' })
    violation('deletion_requested', { force: true })
    const bare = EventFactory.forTenant('acme', { causedBy: 'controller:test' })
    for (const call of [
      () => setStatus(bare, s, 'a.b'),
      () => addFinalizer(bare, s, 'a.b'),
      () => removeFinalizer(bare, s, 'a.b'),
    ])
      assert.throws(call, (e) => isEventplaneError(e, 'core.invalid_name'))
  })
})

describe('controller building blocks', () => {
  test('fact ids are UUIDv5 of controller, trigger and step: stable, and distinct per step', () => {
    const trigger = '0190f0a0-0000-7000-8000-000000000001'
    assert.equal(factId('deployments', trigger, 'scheduled'), factId('deployments', trigger, 'scheduled'))
    assert.notEqual(factId('deployments', trigger, 'scheduled'), factId('deployments', trigger, 'scaled'))
    assert.notEqual(factId('deployments', trigger, 'scheduled'), factId('other', trigger, 'scheduled'))
    assert.match(
      factId('deployments', trigger, 'x'),
      /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    )
  })

  test('a keyed queue keeps each key in order and bounds concurrency across keys', async () => {
    const q = new KeyedQueue(2)
    const seen: string[] = []
    let running = 0
    let peak = 0
    for (let i = 0; i < 5; i++) {
      for (const key of ['a', 'b', 'c']) {
        q.push(key, async () => {
          running++
          peak = Math.max(peak, running)
          await new Promise((r) => setTimeout(r, Math.random() * 5))
          seen.push(`${key}${i}`)
          running--
        })
      }
    }
    await q.idle()
    assert.equal(peak, 2)
    for (const key of ['a', 'b', 'c'])
      assert.deepEqual(
        seen.filter((s) => s[0] === key),
        [0, 1, 2, 3, 4].map((i) => `${key}${i}`),
      )
  })
  test('a keyed queue refuses no concurrency, is idle when empty, idle only after a key queued behind, and goes on past a rejected task', async () => {
    for (const bad of [0, -1, 1.5, Number.NaN])
      assert.throws(() => new KeyedQueue(bad), RangeError, `concurrency ${bad}`)
    const q = new KeyedQueue(1)
    await q.idle()
    const gates: (() => void)[] = []
    const done: string[] = []
    const gated = (name: string) => async () => {
      await new Promise<void>((r) => gates.push(r))
      done.push(name)
    }
    q.push('a', gated('a1'))
    q.push('a', gated('a2'))
    let idle = false
    const idled = q.idle().then(() => {
      idle = true
    })
    gates.shift()!()
    // a2 starts only after a1 settled: wait until its gate is there.
    while (gates.length === 0) await new Promise((r) => setImmediate(r))
    assert.deepEqual(done, ['a1'])
    assert.equal(idle, false, 'idle while a2 of the same key is still queued')
    assert.equal(q.size, 1)
    gates.shift()!()
    await idled
    assert.deepEqual(done, ['a1', 'a2'])
    q.push('b', () => Promise.reject(new Error('its own fault')))
    q.push('b', async () => {
      done.push('b2')
    })
    await q.idle()
    assert.deepEqual(done, ['a1', 'a2', 'b2'])
    assert.equal(q.size, 0)
  })
})
