import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { EventFactory, isEventplaneError, storedDataBytes, validateData } from '@eventplane/core'

const tooLarge = (size: number, limit: number) => (e: unknown) =>
  isEventplaneError(e, 'core.payload_too_large') && e.details.size === size && e.details.limit === limit

describe('the bound on event data', () => {
  test('counts the UTF-8 bytes of the stored form, not its characters: é is 2 bytes, 🚀 is 4', () => {
    // {"s": "…"} (jsonb's form) is 9 bytes around the text.
    const accents = { s: 'é'.repeat(100) }
    assert.equal(validateData(accents, 209), 209)
    assert.throws(() => validateData(accents, 208), tooLarge(209, 208))
    const rockets = { s: '🚀'.repeat(10) }
    assert.equal(validateData(rockets, 49), 49)
    assert.throws(() => validateData(rockets, 48), tooLarge(49, 48))
    const f = EventFactory.forTenant('acme', { causedBy: 'user:test', maxDataBytes: 208 })
    assert.throws(() => f.intent({ category: 'deployment', id: 'web' }, 'created', accents), tooLarge(209, 208))
  })

  test('counts numbers as PostgreSQL stores them, in full decimal: 1e308 is 309 bytes, 5e-324 is 326', () => {
    // What the log stores is what the relay must publish (see the stored-size security test): 60 KB of
    // 1e308 as JSON would be 2.9 MB in the log, so it is measured as that.
    assert.equal(storedDataBytes({ n: 1e308 }), 7 + 309)
    assert.equal(storedDataBytes({ n: 5e-324 }), 7 + 326)
    assert.equal(storedDataBytes({ n: -1.5e-7 }), 7 + '-0.00000015'.length)
    assert.equal(storedDataBytes({ n: 1.5e21 }), 7 + 22)
    const many = { n: Array<number>(9000).fill(1e308) }
    assert.ok(new TextEncoder().encode(JSON.stringify(many)).byteLength < 64 * 1024, '63 KB as JSON')
    assert.throws(() => validateData(many), tooLarge(9 + 9000 * 311 - 2, 64 * 1024))
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
    assert.equal(validateData({ a: Object.assign(Object.create(null), { b: 1 }) }), 15)
  })
})
