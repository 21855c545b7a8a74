import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import { NAME_LIMITS, isEventplaneError, validateName, validateStreamId, validateTenant } from '@eventplane/core'

const ALLOWED = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-'
const allowedName = (max: number) => fc.string({ unit: fc.constantFrom(...ALLOWED), minLength: 1, maxLength: max })

describe('names', () => {
  test('every non-empty name of ASCII letters, digits, _ and - within the limit is accepted', () => {
    fc.assert(fc.property(allowedName(NAME_LIMITS.tenant), (name) => validateTenant(name) === name))
  })

  test('a name containing any other character is rejected with core.invalid_name', () => {
    const forbidden = fc.oneof(
      fc.constantFrom('.', '*', '>', ' ', '\t', '\n', '$', '\u0000', '\u007f', '/', '\\', '"', "'", 'é', '\u{1F600}'),
      fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }).filter((c) => !ALLOWED.includes(c)),
    )
    fc.assert(
      fc.property(allowedName(20), forbidden, fc.nat(20), (name, bad, at) => {
        const i = at % (name.length + 1)
        const value = name.slice(0, i) + bad + name.slice(i)
        for (const kind of ['tenant', 'category', 'type'] as const) {
          assert.throws(
            () => validateName(kind, value),
            (e) => isEventplaneError(e, 'core.invalid_name'),
          )
        }
      }),
    )
  })

  test('stream ids may also contain a colon, nothing else', () => {
    assert.equal(validateStreamId('web:eu-1'), 'web:eu-1')
    assert.throws(
      () => validateTenant('a:b'),
      (e) => isEventplaneError(e, 'core.invalid_name'),
    )
  })

  test('empty, over-long and non-string names are rejected', () => {
    for (const kind of Object.keys(NAME_LIMITS) as (keyof typeof NAME_LIMITS)[]) {
      assert.throws(
        () => validateName(kind, ''),
        (e) => isEventplaneError(e, 'core.invalid_name'),
      )
      assert.throws(
        () => validateName(kind, 'a'.repeat(NAME_LIMITS[kind] + 1)),
        (e) => isEventplaneError(e, 'core.invalid_name'),
      )
      assert.throws(
        () => validateName(kind, 42),
        (e) => isEventplaneError(e, 'core.invalid_name'),
      )
      assert.equal(validateName(kind, 'a'.repeat(NAME_LIMITS[kind])), 'a'.repeat(NAME_LIMITS[kind]))
    }
  })
})
