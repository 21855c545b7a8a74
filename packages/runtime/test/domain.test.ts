import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { Type } from '@sinclair/typebox'
import { isEventplaneError } from '@eventplane/core'
import { type Controller, defineDomain, defineReducerProjection, isDomain } from '../src/index.ts'

const controller: Controller = { name: 'counter', categories: ['counter'], reconcile: async () => {} }
const projection = defineReducerProjection({
  name: 'counter_total',
  version: 1,
  initial: () => ({ total: 0 }),
  apply: (s) => s,
  key: (e) => e.stream.id,
})
const Bump = Type.Object({ by: Type.Integer({ minimum: 1 }) }, { additionalProperties: false })

const invalid = (fn: () => unknown, message: RegExp): void =>
  assert.throws(
    fn,
    (e: unknown) => isEventplaneError(e, 'runtime.invalid_domain') && message.test((e as Error).message),
  )

describe('defineDomain', () => {
  test('a domain is frozen and its registry holds its schemas, the mutate facts, reconcile_failed and reconcile_started', () => {
    const domain = defineDomain({
      name: 'counters',
      schemas: { bump: Bump, reset: { 1: Type.Object({}), 2: Type.Object({ to: Type.Integer() }) } },
      controllers: [controller],
      projections: [projection],
    })
    assert.ok(isDomain(domain))
    assert.ok(Object.isFrozen(domain) && Object.isFrozen(domain.controllers) && Object.isFrozen(domain.projections))
    const registry = domain.registry()
    const keys = ['bump@1', 'reset@1', 'reset@2', 'status_changed@1', 'finalizer_added@1', 'reconcile_failed@1']
    for (const key of [...keys, 'reconcile_started@1']) assert.ok(registry.list().includes(key), key)
    assert.throws(
      () => registry.validate('bump', 1, { by: 'x' }),
      (e: unknown) => isEventplaneError(e, 'core.schema_violation'),
    )
    assert.notEqual(domain.registry(), registry, 'each caller gets its own registry')
    assert.equal(domain.find('counter')?.kind, 'controller')
    assert.equal(domain.find('counter_total')?.kind, 'projection')
    assert.equal(domain.find('nope'), undefined)
  })

  test('a plain object is not a domain', () => {
    assert.equal(isDomain({ name: 'counters', controllers: [], projections: [] }), false)
    assert.equal(isDomain(undefined), false)
  })

  test('a bad name, a name used twice, a bad schema or a redefined runtime fact is runtime.invalid_domain', () => {
    invalid(() => defineDomain({ name: 'a.b' }), /domain needs a name/)
    invalid(
      () => defineDomain({ name: 'd', controllers: [controller], projections: [{ ...projection, name: 'counter' }] }),
      /two projections or controllers named counter/,
    )
    invalid(() => defineDomain({ name: 'd', schemas: { bump: { type: 'object' } as never } }), /bump/)
    invalid(() => defineDomain({ name: 'd', schemas: { bump: { 0: Bump } } }), /bump/)
    invalid(
      () => defineDomain({ name: 'd', schemas: { status_changed: Bump } }),
      /status_changed@1 is already registered/,
    )
    invalid(
      () => defineDomain({ name: 'd', controllers: [{ ...controller, categories: ['a.b'] }] }),
      /controller counter/,
    )
    invalid(() => defineDomain({ name: 'd', projections: [{ ...projection, version: 0 }] }), /projection counter_total/)
    invalid(
      () => defineDomain({ name: 'd', controllers: [{ ...controller, reconcile: undefined as never }] }),
      /controller counter needs categories and a reconcile function/,
    )
    invalid(() => defineDomain({ name: 'd', controllers: [{ ...controller, name: 'a.b' }] }), /controller a\.b/)
    invalid(
      () => defineDomain({ name: 'd', schemas: { bump: 5 as never } }),
      /schema of "bump" is not a TypeBox schema/,
    )
    invalid(() => defineDomain({ name: 'd', controllers: [null as never] }), /a controller has no name/)
    invalid(
      () => defineDomain({ name: 'd', projections: [{ ...projection, name: 7 as never }] }),
      /a projection has no name/,
    )
  })
})
