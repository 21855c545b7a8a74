import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import {
  EventFactory,
  RESERVED_CATEGORY_PREFIX,
  asSystemEnvelope,
  draftIntent,
  isEventplaneError,
  isReservedCategory,
  isSystemEnvelope,
  validateCategory,
  validateEnvelope,
} from '@eventplane/core'

const refused = (e: unknown): boolean =>
  isEventplaneError(e, 'core.invalid_name') && e.details.reserved === RESERVED_CATEGORY_PREFIX

describe('the reserved category prefix', () => {
  test('exactly the categories beginning with eventplane_ (any case) are reserved', () => {
    assert.equal(RESERVED_CATEGORY_PREFIX, 'eventplane_')
    for (const c of ['eventplane_reconciles', 'eventplane_x', 'EventPlane_Reconciles', 'EVENTPLANE_'])
      assert.equal(isReservedCategory(c), true, c)
    for (const c of ['eventplane', 'eventplane-x', 'my_eventplane_x', 'deployment', 'eventplanex'])
      assert.equal(isReservedCategory(c), false, c)
    fc.assert(
      fc.property(fc.stringMatching(/^[A-Za-z0-9_-]{1,40}$/), (suffix) => {
        assert.equal(isReservedCategory(`eventplane_${suffix}`), true)
        assert.equal(isReservedCategory(`x${suffix}`), false)
      }),
    )
  })

  test("a client's draftIntent refuses a reserved category before anything is sent", () => {
    for (const category of ['eventplane_reconciles', 'EVENTPLANE_future'])
      assert.throws(() => draftIntent({ tenant: 'acme', category, id: 'x' }, 'create', {}), refused)
    assert.equal(draftIntent({ tenant: 'acme', category: 'deployment', id: 'x' }, 'create', {}).kind, 'intent')
  })

  test('reading names and envelopes of a reserved category still works (the runtime decodes its records)', () => {
    assert.equal(validateCategory('eventplane_reconciles'), 'eventplane_reconciles')
    const trigger = EventFactory.forTenant('acme', { causedBy: 'user:a' }).intent(
      { category: 'deployment', id: 'web' },
      'create',
      {},
    )
    const own = EventFactory.systemFromEvent(trigger, { causedBy: 'controller:c' }).internal(
      { category: 'eventplane_reconciles', id: `c:${trigger.event_id}` },
      'reconcile_started',
      { controller: 'c', attempt: 1 },
    )
    assert.equal(isSystemEnvelope(own), true)
    const decoded = validateEnvelope(JSON.parse(JSON.stringify(own)))
    assert.equal(decoded.stream.category, 'eventplane_reconciles')
    assert.equal(isSystemEnvelope(decoded), false, 'a decoded copy is not the system envelope')
    assert.equal(isSystemEnvelope(asSystemEnvelope(decoded)), true)
    assert.throws(
      () => asSystemEnvelope({ ...own }),
      (e) => isEventplaneError(e, 'core.invalid_envelope'),
      'only an envelope validated here can be vouched for',
    )
  })
})
