import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { isEventplaneError } from '@eventplane/core'
import { resolveGatewayConfig } from '../src/gateway-process.ts'

const base = { EVENTPLANE_DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/x' }

describe('gateway process settings: limits from EVENTPLANE_GATEWAY_*', () => {
  test('unset knobs leave the defaults to the gateway; set ones become typed limits', () => {
    assert.deepEqual(resolveGatewayConfig(base).limits, { perTenant: {} })
    const { limits } = resolveGatewayConfig({
      ...base,
      EVENTPLANE_GATEWAY_RATE: '12.5',
      EVENTPLANE_GATEWAY_BURST: '25',
      EVENTPLANE_GATEWAY_BYTE_RATE: 'unlimited',
      EVENTPLANE_GATEWAY_TENANT_MAX_IN_FLIGHT: '16',
      EVENTPLANE_GATEWAY_TENANT_MAX_BYTES: '1048576',
      EVENTPLANE_GATEWAY_TENANT_CONCURRENCY: '1',
      EVENTPLANE_GATEWAY_MAX_IN_FLIGHT: '256',
      EVENTPLANE_GATEWAY_CONCURRENCY: '4',
      EVENTPLANE_GATEWAY_REFUSAL_HOLD_MS: '0',
      EVENTPLANE_GATEWAY_TENANT_LIMITS: '{"acme":{"ratePerSecond":"unlimited","burst":500}}',
    })
    assert.deepEqual(limits, {
      perTenant: {
        ratePerSecond: 12.5,
        burst: 25,
        bytesPerSecond: Number.POSITIVE_INFINITY,
        maxInFlight: 16,
        maxBytesInFlight: 1048576,
        maxConcurrent: 1,
      },
      tenants: { acme: { ratePerSecond: Number.POSITIVE_INFINITY, burst: 500 } },
      maxInFlight: 256,
      concurrency: 4,
      refusalHoldMs: 0,
    })
  })

  test('a bad value is refused at startup as bus.config, naming the setting', () => {
    for (const [key, value] of [
      ['EVENTPLANE_GATEWAY_RATE', '0'],
      ['EVENTPLANE_GATEWAY_RATE', 'fast'],
      ['EVENTPLANE_GATEWAY_BURST', '-1'],
      ['EVENTPLANE_GATEWAY_TENANT_LIMITS', '{"acme":{"rate":1}}'],
      ['EVENTPLANE_GATEWAY_TENANT_LIMITS', '{"acme":{"burst":0}}'],
      ['EVENTPLANE_GATEWAY_TENANT_LIMITS', '[1]'],
    ] as const) {
      assert.throws(
        () => resolveGatewayConfig({ ...base, [key]: value }),
        (e: unknown) => isEventplaneError(e, 'bus.config') && /gateway limits|EVENTPLANE_GATEWAY/.test(e.message),
        `${key}=${value}`,
      )
    }
  })
})
