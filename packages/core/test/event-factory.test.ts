import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import { type EventEnvelope, EventFactory, isEventplaneError, validateEnvelope } from '@eventplane/core'

const s = { category: 'deployment', id: 'web' }

describe('EventFactory', () => {
  test('a root event starts its own correlation chain and carries tenant, principal and time', () => {
    const f = EventFactory.forTenant('acme', {
      causedBy: 'user:alice',
      now: () => new Date('2026-01-02T03:04:05.000Z'),
    })
    const e = f.intent(s, 'create', { image: 'nginx' })
    assert.equal(e.tenant_id, 'acme')
    assert.equal(e.kind, 'intent')
    assert.equal(e.correlation_id, e.event_id)
    assert.equal(e.causation_id, null)
    assert.equal(e.caused_by, 'user:alice')
    assert.equal(e.occurred_at, '2026-01-02T03:04:05.000Z')
    assert.match(e.event_id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-/)
    assert.equal(validateEnvelope(e), e)
  })

  test('event ids are time-ordered UUIDv7', () => {
    const f = EventFactory.forTenant('acme', { causedBy: 'user:a' })
    const ids = Array.from({ length: 200 }, () => f.intent(s, 'create', {}).event_id)
    assert.deepEqual([...ids].sort(), ids)
  })

  test('lineage: every event of a random derivation tree keeps the root correlation and points at its parent', () => {
    fc.assert(
      fc.property(
        fc.array(fc.nat(), { minLength: 1, maxLength: 30 }),
        fc.array(fc.constantFrom('intent', 'fact', 'internal'), { minLength: 30, maxLength: 30 }),
        (parents, kinds) => {
          const root = EventFactory.forTenant('acme', { causedBy: 'user:a' }).intent(s, 'create', {})
          const events: EventEnvelope[] = [root]
          const parentOf = new Map<string, string>()
          parents.forEach((p, i) => {
            const parent = events[p % events.length]!
            const child = EventFactory.forTenant('acme', { causedBy: 'user:a' }).causedBy(parent, {
              causedBy: 'controller:x',
            })
            const kind = kinds[i] as 'intent' | 'fact' | 'internal'
            const e = child[kind](s, 'step', { i })
            parentOf.set(e.event_id, parent.event_id)
            events.push(e)
          })
          for (const e of events.slice(1)) {
            assert.equal(e.correlation_id, root.event_id)
            assert.equal(e.causation_id, parentOf.get(e.event_id))
            assert.equal(e.tenant_id, 'acme')
            assert.equal(e.caused_by, 'controller:x')
          }
        },
      ),
    )
  })

  test('a child factory refuses a parent from another tenant', () => {
    fc.assert(
      fc.property(fc.constantFrom('globex', 'initech', 'acme2'), (other) => {
        const parent = EventFactory.forTenant(other, { causedBy: 'user:b' }).intent(s, 'create', {})
        assert.throws(
          () => EventFactory.forTenant('acme', { causedBy: 'user:a' }).causedBy(parent),
          (e) => isEventplaneError(e, 'core.tenant_mismatch'),
        )
      }),
    )
  })

  test('fromEvent derives a factory in the parent tenant and keeps lineage; explicit ids are kept', () => {
    const parent = EventFactory.forTenant('globex', { causedBy: 'user:b' }).intent(s, 'create', {})
    const f = EventFactory.fromEvent(parent, { causedBy: 'controller:deployments' })
    const id = '0190a0a0-0000-5000-8000-000000000001'
    const fact = f.fact(s, 'scheduled', {}, { eventId: id })
    assert.deepEqual(
      [fact.tenant_id, fact.correlation_id, fact.causation_id, fact.event_id],
      ['globex', parent.correlation_id, parent.event_id, id],
    )
    // A parent deeper in a chain: its correlation (the root's id) is kept, not its own id.
    const child = f.fact(s, 'scheduled', {})
    const grandchild = EventFactory.fromEvent(child, { causedBy: 'controller:pods' }).fact(s, 'started', {})
    assert.deepEqual([grandchild.correlation_id, grandchild.causation_id], [parent.event_id, child.event_id])
    assert.deepEqual(
      [
        EventFactory.systemFromEvent(child, { causedBy: 'controller:pods' }).internal(s, 'noted', {}).correlation_id,
        f.causedBy(child).fact(s, 'noted', {}).correlation_id,
      ],
      [parent.event_id, parent.event_id],
    )
  })

  test('a bad tenant, principal or schema version is refused', () => {
    assert.throws(
      () => EventFactory.forTenant('a.b', { causedBy: 'u' }),
      (e) => isEventplaneError(e, 'core.invalid_name'),
    )
    assert.throws(
      () => EventFactory.forTenant('acme', { causedBy: 'has space' }),
      (e) => isEventplaneError(e, 'core.invalid_envelope'),
    )
    const f = EventFactory.forTenant('acme', { causedBy: 'u' })
    assert.throws(
      () => f.intent(s, 'create', {}, { schemaVersion: 0 }),
      (e) => isEventplaneError(e, 'core.invalid_envelope'),
    )
  })
})
