import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import {
  EventFactory,
  REDACTED_ACTOR,
  type RecordedEvent,
  type WireEvent,
  envelopeFromWire,
  fromWire,
  isEventplaneError,
  toWire,
} from '@eventplane/core'

const invalid = (e: unknown): boolean => isEventplaneError(e, 'core.invalid_envelope')

function recorded(): RecordedEvent {
  const e = EventFactory.forTenant('acme', { causedBy: 'user:alice' }).intent(
    { category: 'deployment', id: 'web' },
    'create',
    { image: 'nginx' },
  )
  return { ...e, stream_version: 3, global_position: 42n, tx_id: 9n, recorded_at: e.occurred_at }
}

describe('the wire form at the boundary', () => {
  test('fromWire takes only canonical decimals for positions and a version from 1: negative, padded, fractional or 21 digits are refused', () => {
    const good = JSON.parse(JSON.stringify(toWire(recorded()))) as WireEvent
    assert.equal(fromWire(good).global_position, 42n)
    const bad: [keyof WireEvent, unknown][] = [
      ['global_position', '-1'],
      ['global_position', '042'],
      ['global_position', '4.2'],
      ['global_position', '1'.repeat(21)],
      ['global_position', 42],
      ['tx_id', '-9'],
      ['tx_id', '09'],
      ['stream_version', 0],
      ['stream_version', 1.5],
    ]
    for (const [field, value] of bad) {
      // The whole wire shape (checked in place) and one with an extra field (checked field by field).
      assert.throws(() => fromWire({ ...good, [field]: value }), invalid, `${field} ${JSON.stringify(value)}`)
      assert.throws(() => fromWire({ ...good, [field]: value, extra: 1 }), invalid, `${field} (slow path)`)
    }
  })

  test('a masked actor is still an importable envelope; a dropped one or dropped data is not a recorded event', () => {
    const e = recorded()
    const masked = toWire(e, { redact: { actor: 'mask' } })
    assert.equal(masked.caused_by, REDACTED_ACTOR)
    assert.equal(envelopeFromWire(JSON.parse(JSON.stringify(masked))).caused_by, REDACTED_ACTOR)
    const dropped = toWire(e, { redact: { actor: 'drop', data: true } })
    assert.equal('caused_by' in dropped, false)
    assert.equal('data' in dropped, false)
    assert.throws(() => fromWire(JSON.parse(JSON.stringify(dropped))), invalid)
    assert.deepEqual(toWire(e).caused_by, 'user:alice', 'kept unless redacted')
  })
})
