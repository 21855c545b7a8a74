import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import { Command } from 'commander'
import { isEvtctlError } from '../src/cli-error.ts'
import { resolveConfig } from '../src/config.ts'
import { KNOWN_ENV } from '../src/config-warnings.ts'
import { resolveSettings, settingOptions } from '../src/service-settings.ts'
import { GATEWAY_SETTINGS, gatewayLimits } from '../src/services/gateway.ts'
import { RELAY_SETTINGS } from '../src/services/relay.ts'

/** The gateway's settings from `argv` flags and `env`, as `evtctl gateway` resolves them. */
function gatewaySettings(argv: string[], env: Record<string, string>) {
  const command = new Command('gateway').exitOverride()
  for (const option of settingOptions(GATEWAY_SETTINGS)) command.addOption(option)
  command.parse(argv, { from: 'user' })
  return resolveSettings(GATEWAY_SETTINGS, 'gateway', command, resolveConfig({}, { env, cwd: '/' }), env)
}

describe('service settings: flag, then EVENTPLANE_*, then the config file section', () => {
  test('unset knobs leave the defaults to the gateway; set ones become typed limits', () => {
    assert.deepEqual(gatewayLimits(gatewaySettings([], {})), { perTenant: {} })
    const settings = gatewaySettings(['--rate', '12.5', '--concurrency', '4'], {
      EVENTPLANE_GATEWAY_RATE: '99',
      EVENTPLANE_GATEWAY_BURST: '25',
      EVENTPLANE_GATEWAY_BYTE_RATE: 'unlimited',
      EVENTPLANE_GATEWAY_TENANT_MAX_IN_FLIGHT: '16',
      EVENTPLANE_GATEWAY_TENANT_MAX_BYTES: '1048576',
      EVENTPLANE_GATEWAY_TENANT_CONCURRENCY: '1',
      EVENTPLANE_GATEWAY_MAX_IN_FLIGHT: '256',
      EVENTPLANE_GATEWAY_REFUSAL_HOLD_MS: '0',
      EVENTPLANE_GATEWAY_TENANT_LIMITS: '{"acme":{"ratePerSecond":"unlimited","burst":500}}',
    })
    assert.deepEqual(gatewayLimits(settings), {
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
    assert.equal(settings.sources.rate, 'flag')
    assert.equal(settings.sources.burst, 'env')
    assert.equal(settings.sources.queue, 'unset')
  })

  test('a bad value is refused at startup as cli.config, naming the setting', () => {
    for (const [key, value] of [
      ['EVENTPLANE_GATEWAY_RATE', '0'],
      ['EVENTPLANE_GATEWAY_RATE', 'fast'],
      ['EVENTPLANE_GATEWAY_BURST', '-1'],
      ['EVENTPLANE_GATEWAY_TENANT_LIMITS', '{"acme":{"rate":1}}'],
      ['EVENTPLANE_GATEWAY_TENANT_LIMITS', '{"acme":{"burst":0}}'],
      ['EVENTPLANE_GATEWAY_TENANT_LIMITS', '[1]'],
    ] as const) {
      assert.throws(
        () => gatewayLimits(gatewaySettings([], { [key]: value })),
        (e: unknown) => isEvtctlError(e, 'cli.config') && /gateway limits|EVENTPLANE_GATEWAY/.test(e.message),
        `${key}=${value}`,
      )
    }
  })

  test('an integer below its minimum is refused; an empty variable is unset, not a bad value', () => {
    for (const [key, value] of [
      ['EVENTPLANE_GATEWAY_MAX_IN_FLIGHT', '0'],
      ['EVENTPLANE_GATEWAY_TENANT_CONCURRENCY', '0'],
    ] as const) {
      assert.throws(
        () => gatewaySettings([], { [key]: value }),
        (e: unknown) =>
          isEvtctlError(e, 'cli.config') && e.message === `${key} must be an integer of at least 1, got "0"`,
        `${key}=${value}`,
      )
    }
    assert.equal(gatewaySettings([], { EVENTPLANE_GATEWAY_REFUSAL_HOLD_MS: '0' }).values.refusalHoldMs, 0)
    const empty = gatewaySettings([], { EVENTPLANE_GATEWAY_RATE: '', EVENTPLANE_GATEWAY_MAX_IN_FLIGHT: '' })
    assert.deepEqual([empty.sources.rate, empty.sources.maxInFlight], ['unset', 'unset'])
    assert.deepEqual(gatewayLimits(empty), { perTenant: {} })
  })

  test('a bad or unknown key of a config file section names the file, as a top-level key does', () => {
    const dir = mkdtempSync(join(tmpdir(), 'evtctl-settings-'))
    try {
      const relay = (body: object) => {
        const path = join(dir, 'relay.json')
        writeFileSync(path, JSON.stringify({ relay: body }), { mode: 0o600 })
        const command = new Command('relay').exitOverride()
        for (const option of settingOptions(RELAY_SETTINGS)) command.addOption(option)
        command.parse([], { from: 'user' })
        return () =>
          resolveSettings(RELAY_SETTINGS, 'relay', command, resolveConfig({ config: path }, { env: {}, cwd: dir }), {})
      }
      const path = join(dir, 'relay.json')
      assert.throws(
        relay({ relayNmae: 'main' }),
        (e: unknown) =>
          isEvtctlError(e, 'cli.config') &&
          e.message === `config file ${path}: unknown relay setting "relayNmae" (did you mean "relayName"?)`,
      )
      assert.throws(
        relay({ pollMs: 'soon' }),
        (e: unknown) =>
          isEvtctlError(e, 'cli.config') &&
          e.message === `config file ${path}: relay.pollMs must be an integer of at least 1, got "soon"`,
      )
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  test('every service setting has its variable in the list evtctl does not warn about', () => {
    for (const spec of [...RELAY_SETTINGS, ...GATEWAY_SETTINGS]) assert.ok(KNOWN_ENV.includes(spec.env), spec.env)
  })
})
