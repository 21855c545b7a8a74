/**
 * The log stream's fill in `evtctl status` (attack review 2026-12-02: storage is shared, not bounded per
 * tenant). A real nats-server with our permission config, a real PostgreSQL log, an in-process relay whose
 * stream has a small max_bytes, and `evtctl status` as the operator runs it (operator.creds).
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { EventplaneMetrics, Relay, STREAM_NAME, startGateway } from '@eventplane/bus-nats'
import type { Gateway, Logger } from '@eventplane/bus-nats'
import { ROLES } from '@eventplane/store-pg'
import { type JetStreamManager, jetstreamManager } from '@nats-io/jetstream'
import type { NatsConnection } from '@nats-io/transport-node'
import type { StatusReport } from '../../packages/evtctl/src/commands/status.ts'
import { type CliResult, killAll, pollCli, runCli } from '../../packages/evtctl/test/helpers.ts'
import { type BusEnv, appendIntents, createBusEnv, eventually } from '../../packages/bus-nats/test/fixtures.ts'
import { spawnRelay } from '../faults/support/children.ts'
import { metric, operatorStatus } from './support.ts'

const MAX_BYTES = 32 * 1024
const MAX_AGE_MS = 90 * 60 * 1000
const FILL_LINE = (percent: number, bytes: number, threshold: number): string =>
  `stream ${STREAM_NAME} is ${percent}% full (${bytes} of ${MAX_BYTES} bytes, at or above ${threshold}%): ` +
  'once full the relay stops publishing for every tenant'

describe("evtctl status shows the log stream's fill; --check judges it", () => {
  let env: BusEnv
  let relay: Relay
  let gateway: Gateway
  let jsm: JetStreamManager
  const metrics = new EventplaneMetrics()
  const refusals: Array<Record<string, unknown>> = []
  const logger: Logger = {
    debug: () => {},
    info: () => {},
    warn: (obj, msg) => {
      if (msg === 'publish failed') refusals.push(obj as Record<string, unknown>)
    },
    error: () => {},
  }
  let relayNc: NatsConnection
  const startRelay = (maxBytes: number): Relay => {
    const started = new Relay({
      sql: env.db.connect(ROLES.relay, 3),
      nc: relayNc,
      stream: { maxBytes, maxAgeMs: MAX_AGE_MS },
      pollIntervalMs: 200,
      maxBackoffMs: 300,
      metrics,
      logger,
    })
    started.start()
    return started
  }
  /** evtctl status, the process; `polled` is the same in this process, for the polls (see pollCli). */
  const status = operatorStatus(runCli, () => env)
  const polled = operatorStatus(pollCli, () => env)
  const checkLines = (r: CliResult): string[] => r.stdout.split('\n').filter((l) => l.startsWith('check '))
  const reportOf = (r: CliResult): StatusReport => JSON.parse(r.stdout) as StatusReport
  const jetStreamState = async () => (await jsm.streams.info(STREAM_NAME)).state

  before(async () => {
    env = await createBusEnv('ep_ops_status_stream')
    relayNc = await env.natsAs('relay')
    relay = startRelay(MAX_BYTES)
    gateway = await startGateway({ nc: await env.natsAs('gateway'), store: env.intents })
    jsm = await jetstreamManager(await env.natsAs('operator'))
  })
  after(async () => {
    killAll()
    await Promise.allSettled([relay?.stop(), gateway?.stop()])
    await env.cleanup()
  })

  test('status shows messages, bytes, max_bytes, fill and max_age as JetStream reports them; --check exits 3 at or above --max-stream-fill, 0 below', async () => {
    await appendIntents(env.intents, 'acme', 5, 5)
    await eventually(async () => (await jetStreamState()).messages === 5, 'the relay to publish 5 events')
    await eventually(async () => (await polled('--check')).code === 0, 'every check to pass (relay caught up)')
    const { bytes, messages } = await jetStreamState()
    const percent = Math.floor((bytes * 10_000) / MAX_BYTES) / 100
    assert.ok(percent > 1 && percent < 89, `a fill well below the default bound (${percent}%)`)

    const json = await status('--json')
    assert.equal(json.code, 0, json.stderr)
    assert.deepEqual(reportOf(json).stream, {
      name: STREAM_NAME,
      unknown: null,
      found: true,
      messages: String(messages),
      bytes: String(bytes),
      max_bytes: String(MAX_BYTES),
      fill_percent: percent,
      max_age_ms: MAX_AGE_MS,
    })
    const human = await status()
    const kib = (bytes / 1024).toFixed(1)
    assert.match(
      human.stdout,
      new RegExp(
        `^stream +EVENTPLANE: ${percent}% full, ${bytes} of ${MAX_BYTES} bytes \\(${kib} KiB of 32\\.0 KiB\\), 5 messages, max_age 1h30m$`,
        'm',
      ),
      human.stdout,
    )

    // At the bound (the whole percent at or below the fill): a problem, one line, exit 3.
    const at = Math.floor(percent)
    const full = await status('--check', '--max-stream-fill', String(at))
    assert.equal(full.code, 3, full.stderr)
    assert.deepEqual(checkLines(full), [`check       unhealthy: ${FILL_LINE(percent, bytes, at)}`])
    assert.match(full.stderr, /^evtctl: bus\.unavailable: status --check: 1 problem /m)
    const fullJson = reportOf(await status('--check', '--json', '--max-stream-fill', String(at)))
    assert.deepEqual(fullJson.check?.problems, [FILL_LINE(percent, bytes, at)])
    assert.equal(fullJson.check?.max_stream_fill, at)
    // Below it (the next whole percent, and the default 90): healthy.
    const below = await status('--check', '--max-stream-fill', String(at + 1))
    assert.equal(below.code, 0, below.stdout)
    assert.deepEqual(checkLines(below), ['check       healthy'])
    const byDefault = reportOf(await status('--check', '--json'))
    assert.deepEqual([byDefault.check?.healthy, byDefault.check?.max_stream_fill], [true, 90])
    // Not a percent: refused before anything is asked.
    const bad = await status('--check', '--max-stream-fill', '101')
    assert.equal(bad.code, 1, bad.stderr)
    assert.match(bad.stderr, /--max-stream-fill must be a whole percent from 1 to 100/)
  })

  test('a full stream: the relay is refused (counted by api_code), --check names the fill at the default 90%, and the relay resumes once there is room', async () => {
    await appendIntents(env.intents, 'acme', 60, 20, 'more')
    await eventually(() => refusals.length > 0, 'the full stream to refuse a publish')
    assert.equal(refusals[0]!.api_code, 10077, JSON.stringify(refusals[0]))
    assert.ok(
      (await metrics
        .render()
        .then((t) => metric(t, 'eventplane_relay_publish_refusals_total{relay="default",api_code="10077"}'))) >= 1,
      'the refusal is counted',
    )
    const { bytes } = await jetStreamState()
    const percent = Math.floor((bytes * 10_000) / MAX_BYTES) / 100
    const checked = await status('--check', '--json')
    assert.equal(checked.code, 3, checked.stderr)
    const report = reportOf(checked)
    assert.equal(report.stream?.bytes, String(bytes), 'the relay publishes nothing more while it is full')
    assert.ok(percent >= 90, `full is at least 90% with ~1 KiB messages (${percent}%)`)
    assert.deepEqual(report.check?.problems, [FILL_LINE(percent, bytes, 90)])

    // Room again: the relay restarted with a larger max_bytes (it sets the stream's limits at every start and
    // retry, so an edit of the stream alone would be undone) publishes the rest, nothing lost.
    await relay.stop()
    relay = startRelay(MAX_BYTES * 4)
    await eventually(async () => (await jetStreamState()).messages === 65, 'the relay to publish every event')
    const after = reportOf(await status('--check', '--json'))
    assert.equal(after.stream?.messages, '65')
    assert.equal(after.stream?.max_bytes, String(MAX_BYTES * 4))
  })

  test('NATS cannot tell the stream (a user without the stream info grant): unknown, and a --check problem', async () => {
    const r = await runCli(['status', '--stuck-after', '3600000', '--check', '--json'], {
      env: {
        EVENTPLANE_DATABASE_URL: env.db.url,
        EVENTPLANE_NATS_URL: env.server.url,
        EVENTPLANE_NATS_CREDS: env.server.credentials.gateway!.creds,
      },
      timeoutMs: 120_000,
    })
    assert.equal(r.code, 3, r.stderr)
    const report = reportOf(r)
    assert.equal(report.stream?.found, false)
    assert.equal(report.stream?.bytes, null)
    assert.match(report.stream?.unknown ?? '', /\S/)
    assert.ok(
      report.check?.problems.includes(`stream ${STREAM_NAME} state unknown: ${report.stream?.unknown}`),
      JSON.stringify(report.check?.problems),
    )
  })

  test("evtctl relay sets the stream's max_bytes and max_age from EVENTPLANE_STREAM_MAX_BYTES and _MAX_AGE_MS", async () => {
    await relay.stop()
    const twoDays = 2 * 86_400_000
    const child = spawnRelay(env, 'default', {
      EVENTPLANE_STREAM_MAX_BYTES: String(MAX_BYTES * 8),
      EVENTPLANE_STREAM_MAX_AGE_MS: String(twoDays),
    })
    try {
      // Generous: on this shared machine a tsx process took over 20 s to start under load.
      await child.waitForLog('relay active', 120_000)
      const r = reportOf(await status('--json'))
      assert.deepEqual([r.stream?.max_bytes, r.stream?.max_age_ms], [String(MAX_BYTES * 8), twoDays])
      assert.match((await status()).stdout, /^stream +EVENTPLANE: .*, 65 messages, max_age 2d$/m)
    } finally {
      await child.kill('SIGTERM')
    }
  })
})
