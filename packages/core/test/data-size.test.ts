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

describe('what event data may hold', () => {
  test('class instances are refused, not stored as their JSON form: a Date, a Map, an object of a class', () => {
    // JSON.stringify would store a Date as a string and a Map as {}: what a reader gets back would not be
    // what the writer passed, so the factory refuses them with core.invalid_data and the path.
    class Money {
      amount = 5
    }
    const f = EventFactory.forTenant('acme', { causedBy: 'user:test' })
    const s = { category: 'deployment', id: 'web' }
    const refused = (path: string) => (e: unknown) =>
      isEventplaneError(e, 'core.invalid_data') && e.message.includes(path)
    assert.throws(() => f.intent(s, 'created', { at: new Date(0) } as never), refused('$.at'))
    assert.throws(() => f.intent(s, 'created', { tags: [new Map([['a', 1]])] } as never), refused('$.tags[0]'))
    assert.throws(() => f.intent(s, 'created', new Money() as never), refused('JSON object'))
    assert.throws(() => validateData({ nested: { price: new Money() } }), refused('$.nested.price'))
    // Plain objects pass, with or without a prototype.
    assert.equal(validateData({ a: Object.assign(Object.create(null), { b: 1 }) }), 13)
  })
})
