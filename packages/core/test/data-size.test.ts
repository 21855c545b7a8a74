import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { EventFactory, isEventplaneError, validateData } from '@eventplane/core'

const tooLarge = (size: number, limit: number) => (e: unknown) =>
  isEventplaneError(e, 'core.payload_too_large') && e.details.size === size && e.details.limit === limit

describe('the bound on event data', () => {
  test('counts the UTF-8 bytes of the JSON form, not its characters: é is 2 bytes, 🚀 is 4', () => {
    // {"s":"…"} is 8 bytes around the text.
    const accents = { s: 'é'.repeat(100) }
    assert.equal(validateData(accents, 208), 208)
    assert.throws(() => validateData(accents, 207), tooLarge(208, 207))
    const rockets = { s: '🚀'.repeat(10) }
    assert.equal(validateData(rockets, 48), 48)
    assert.throws(() => validateData(rockets, 47), tooLarge(48, 47))
    const f = EventFactory.forTenant('acme', { causedBy: 'user:test', maxDataBytes: 207 })
    assert.throws(() => f.intent({ category: 'deployment', id: 'web' }, 'created', accents), tooLarge(208, 207))
  })
})
