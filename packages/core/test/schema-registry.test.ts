import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { Type } from '@sinclair/typebox'
import { SchemaRegistry, SchemaViolation, UnknownSchema } from '../src/index.ts'

// Mutation audit 2026-12-02 (random sample: mutrand): the violation's list was unbounded by no test.
describe('SchemaRegistry', () => {
  const fields = ['a', 'b', 'c', 'd', 'e', 'f', 'g']
  const registry = new SchemaRegistry().register(
    'wide',
    1,
    Type.Object(Object.fromEntries(fields.map((f) => [f, Type.String()]))),
  )

  test('a violation names its first five errors, path first, the first in its message; no more', () => {
    let caught: SchemaViolation | undefined
    try {
      registry.validate('wide', 1, {})
    } catch (e) {
      caught = e as SchemaViolation
    }
    assert.ok(caught instanceof SchemaViolation)
    const details = caught!.details as { type: string; schema_version: number; errors: string[] }
    assert.equal(details.type, 'wide')
    assert.equal(details.schema_version, 1)
    assert.equal(details.errors.length, 5, JSON.stringify(details.errors))
    for (const e of details.errors) assert.match(e, /^\/[a-g]: /)
    assert.equal(caught!.message, `data does not match schema wide@v1: ${details.errors[0]}`)
    registry.validate('wide', 1, Object.fromEntries(fields.map((f) => [f, 'x'])))
    assert.throws(() => registry.validate('wide', 2, {}), UnknownSchema)
  })
})
