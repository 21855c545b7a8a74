/**
 * Subject building (mutation audit 2026-11-30, NATS boundary): every token of a subject the bus builds is
 * validated, so no name can widen a subject (`*`, `>`), split it (`.`) or reach another tenant's prefix.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { type EventKind, isEventplaneError } from '@eventplane/core'
import { logFilter, logSubject, parseSubmitSubject, submitSubject, tenantInboxPrefix } from '../src/subjects.ts'

const BAD_NAMES = ['a.b', '*', '>', 'a b', '', 'é', 'a$b']
const invalidName = (e: unknown): boolean => isEventplaneError(e, 'core.invalid_name')

describe('subjects', () => {
  test('logSubject validates every token: kind, tenant, category and id', () => {
    assert.equal(logSubject('fact', 'acme', 'orders', 'o:1'), 'eventplane.fact.acme.orders.o:1')
    for (const bad of BAD_NAMES) {
      assert.throws(() => logSubject('fact', bad, 'orders', 'o-1'), invalidName, `tenant ${bad}`)
      assert.throws(() => logSubject('fact', 'acme', bad, 'o-1'), invalidName, `category ${bad}`)
      assert.throws(() => logSubject('fact', 'acme', 'orders', bad), invalidName, `id ${bad}`)
    }
    for (const kind of ['*', '>', 'facts', 'intent.acme', '']) {
      assert.throws(() => logSubject(kind as EventKind, 'acme', 'orders', 'o-1'), invalidName, `kind ${kind}`)
    }
  })

  test('logFilter validates what it is given and widens only the tokens left out', () => {
    assert.equal(logFilter(), 'eventplane.>')
    assert.equal(logFilter({ tenant: 'acme' }), 'eventplane.*.acme.>')
    assert.equal(logFilter({ kind: 'intent', tenant: 'acme', category: 'orders' }), 'eventplane.intent.acme.orders.>')
    assert.equal(logFilter({ category: 'orders' }), 'eventplane.*.*.orders.>')
    for (const bad of BAD_NAMES) {
      assert.throws(() => logFilter({ tenant: bad }), invalidName, `tenant ${bad}`)
      assert.throws(() => logFilter({ tenant: 'acme', category: bad }), invalidName, `category ${bad}`)
    }
    assert.throws(() => logFilter({ kind: '*' as EventKind, tenant: 'acme' }), invalidName)
  })

  test('a submit subject has exactly five tokens and valid names; an inbox prefix is one valid token', () => {
    assert.deepEqual(
      { ...parseSubmitSubject(submitSubject('acme', 'orders', 'o-1')) },
      { tenant: 'acme', category: 'orders', id: 'o-1' },
    )
    for (const subject of [
      'eventplane-api.submit.acme.orders',
      'eventplane-api.submit.acme.orders.o-1.extra',
      'eventplane-api.submit.acme.orders.o-1.>',
      'eventplane-api.other.acme.orders.o-1',
      'eventplane.submit.acme.orders.o-1',
      'eventplane-api.submit.*.orders.o-1',
    ]) {
      assert.throws(() => parseSubmitSubject(subject), invalidName, subject)
    }
    assert.equal(tenantInboxPrefix('acme'), '_INBOX_acme')
    for (const bad of BAD_NAMES) assert.throws(() => tenantInboxPrefix(bad), invalidName, `inbox ${bad}`)
  })
})
