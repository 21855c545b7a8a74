import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { isEventplaneError } from '@eventplane/core'
import {
  EventplaneMetrics,
  eventSpanContext,
  formatTraceparent,
  opsConfigFromEnv,
  parseTraceparent,
} from '@eventplane/bus-nats'
import { INVALID_SPAN_CONTEXT, ROOT_CONTEXT, trace } from '@opentelemetry/api'
import { activeContext } from '../src/ops/trace-context.ts'

describe('ops settings, tenant labels and trace context (no servers)', () => {
  test('EVENTPLANE_OPS_PORT is off when unset, a port otherwise; a bad value is bus.config naming it', () => {
    assert.equal(opsConfigFromEnv({}).port, undefined)
    assert.deepEqual(opsConfigFromEnv({ EVENTPLANE_OPS_PORT: '0' }), {
      port: 0,
      host: '127.0.0.1',
      tenantLabelCap: 100,
    })
    assert.equal(opsConfigFromEnv({ EVENTPLANE_OPS_PORT: '9464', EVENTPLANE_OPS_HOST: '::1' }).host, '::1')
    assert.equal(opsConfigFromEnv({ EVENTPLANE_METRICS_TENANT_CAP: '0' }).tenantLabelCap, 0)
    for (const [key, value] of [
      ['EVENTPLANE_OPS_PORT', 'abc'],
      ['EVENTPLANE_OPS_PORT', '70000'],
      ['EVENTPLANE_OPS_PORT', '-1'],
      ['EVENTPLANE_METRICS_TENANT_CAP', 'many'],
    ] as const) {
      assert.throws(
        () => opsConfigFromEnv({ [key]: value }),
        (e: unknown) => isEventplaneError(e, 'bus.config') && e.message.includes(key),
      )
    }
  })

  test('the first tenants seen keep their label; later ones share _other', () => {
    const m = new EventplaneMetrics({ tenantLabelCap: 2 })
    assert.deepEqual(
      ['acme', 'globex', 'initech', 'acme', 'umbrella', 'globex'].map((t) => m.tenant(t)),
      ['acme', 'globex', '_other', 'acme', '_other', 'globex'],
    )
    assert.equal(new EventplaneMetrics({ tenantLabelCap: 0 }).tenant('acme'), '_other')
  })

  test('a malformed traceparent is ignored; an event maps to trace id = correlation id, span id = end of event id', () => {
    const sc = { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', traceFlags: 1 }
    assert.deepEqual(parseTraceparent(formatTraceparent(sc)), { ...sc, isRemote: true })
    for (const bad of [
      undefined,
      '',
      'garbage',
      `01-${sc.traceId}-${sc.spanId}-01`,
      `00-${'0'.repeat(32)}-${sc.spanId}-01`,
      `00-${sc.traceId}-${'0'.repeat(16)}-01`,
      `00-${sc.traceId.toUpperCase()}-${sc.spanId}-01`,
      `00-${sc.traceId}-${sc.spanId}-01-extra`,
    ])
      assert.equal(parseTraceparent(bad), undefined, String(bad))
    const derived = eventSpanContext({
      event_id: '01936f2e-1b2c-7d3e-8f40-5a6b7c8d9e0f',
      correlation_id: '01936f2e-0000-7000-8000-000000000001',
    })
    assert.equal(derived.traceId, '01936f2e000070008000000000000001')
    assert.equal(derived.spanId, '8f405a6b7c8d9e0f')
  })

  test("a caller's active context is its trace only with a valid span context; else the event's own is used", () => {
    // submitIntent's parent (mutation audit 2026-12-02, mutrand2: an invalid active span context taken as the
    // caller's trace went unseen; its span would carry no traceparent, not the event's own trace).
    const valid = trace.setSpanContext(
      ROOT_CONTEXT,
      eventSpanContext({
        event_id: '01936f2e-1b2c-7d3e-8f40-5a6b7c8d9e0f',
        correlation_id: '01936f2e-0000-7000-8000-000000000001',
      }),
    )
    assert.equal(activeContext(valid), valid)
    assert.equal(activeContext(ROOT_CONTEXT), undefined, 'no span context')
    assert.equal(activeContext(trace.setSpanContext(ROOT_CONTEXT, INVALID_SPAN_CONTEXT)), undefined, 'an invalid one')
  })
})
