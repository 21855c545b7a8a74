import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { SpanStatusCode, trace } from '@opentelemetry/api'
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base'
import { EventFactory } from '@eventplane/core'
import { type Gateway, Relay, eventSpanContext, startGateway, submitIntent } from '@eventplane/bus-nats'
import { ROLES } from '@eventplane/store-pg'
import { type Controller, ControllerRunner, controllerLiveSource } from '@eventplane/runtime'
import { type BusEnv, createBusEnv, eventually } from '../../packages/bus-nats/test/fixtures.ts'

describe('trace propagation across submit, gateway, relay and a controller', () => {
  const exporter = new InMemorySpanExporter()
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
  let env: BusEnv
  let gateway: Gateway
  let relay: Relay
  let runner: ControllerRunner

  const tracing: Controller = {
    name: 'tracing',
    categories: ['deployment'],
    async reconcile(_event, ctx) {
      await ctx.emit(ctx.fact('reconciled', { ok: true }))
    },
  }

  before(async () => {
    trace.setGlobalTracerProvider(provider)
    env = await createBusEnv('ep_ops_trace')
    gateway = await startGateway({ nc: await env.natsAs('gateway'), store: env.intents })
    relay = new Relay({
      sql: env.db.connect(ROLES.relay, 4),
      nc: await env.natsAs('relay'),
      name: 'trace',
      pollIntervalMs: 200,
    })
    relay.start()
    runner = new ControllerRunner({
      controller: tracing,
      store: env.facts,
      live: controllerLiveSource(await env.natsAs('controller'), tracing),
    })
    await runner.start()
  })
  after(async () => {
    await runner?.stop()
    await relay?.stop()
    await gateway?.stop()
    await env.cleanup()
    trace.disable()
    await provider.shutdown()
  })

  test('one intent and the fact a controller appends for it form one trace whose parents follow the hops', async () => {
    const intent = EventFactory.forTenant('acme', { causedBy: 'user:ops' }).intent(
      { category: 'deployment', id: 'traced' },
      'scaled',
      { replicas: 3 },
    )
    await submitIntent(await env.natsAs('acme'), intent)
    const spans = (): ReadableSpan[] => exporter.getFinishedSpans()
    const find = (name: string, type: string): ReadableSpan | undefined =>
      spans().find((s) => s.name === name && s.attributes['eventplane.type'] === type)
    await eventually(() => find('eventplane publish', 'reconciled') !== undefined, 'the fact to be published', 60_000)

    const submit = find('eventplane submit', 'scaled')!
    const append = find('eventplane append', 'scaled')!
    const publishIntent = find('eventplane publish', 'scaled')!
    const reconcile = find('eventplane reconcile', 'scaled')!
    const publishFact = find('eventplane publish', 'reconciled')!
    for (const [hop, span] of Object.entries({ submit, append, publishIntent, reconcile, publishFact }))
      assert.ok(span, `a ${hop} span was recorded`)

    // Trace id = the correlation id's 128 bits, for every hop of the intent and of the fact it caused.
    const traceId = intent.correlation_id.replaceAll('-', '')
    for (const span of [submit, append, publishIntent, reconcile, publishFact])
      assert.equal(span.spanContext().traceId, traceId, `${span.name} is in the correlation's trace`)

    // Parents: the submit (no active trace) and the relay's publish hang under the intent's own span context;
    // the gateway's append under the submit (traceparent in the request); the reconcile under the relay's publish
    // (traceparent in the log message); the fact's publish under the fact's span context, linked to its cause.
    const intentSpanId = eventSpanContext(intent).spanId
    assert.equal(submit.parentSpanContext?.spanId, intentSpanId)
    assert.equal(append.parentSpanContext?.spanId, submit.spanContext().spanId)
    assert.equal(publishIntent.parentSpanContext?.spanId, intentSpanId)
    assert.equal(reconcile.parentSpanContext?.spanId, publishIntent.spanContext().spanId)
    const factId = String(publishFact.attributes['eventplane.event_id'])
    assert.equal(publishFact.attributes['eventplane.causation_id'], intent.event_id)
    assert.equal(
      publishFact.parentSpanContext?.spanId,
      eventSpanContext({ event_id: factId, correlation_id: intent.correlation_id }).spanId,
    )
    assert.deepEqual(
      publishFact.links.map((l) => l.context.spanId),
      [intentSpanId],
      'the fact links to its cause',
    )
  })

  test('a refused intent marks the submit and append spans as errors with the refusal’s code', async () => {
    const factory = EventFactory.forTenant('acme', { causedBy: 'user:ops' })
    const stream = { category: 'deployment', id: 'traced-conflict' }
    const stale = factory.intent(stream, 'scaled', { replicas: 1 })
    await assert.rejects(submitIntent(await env.natsAs('acme'), stale, { expectedVersion: 5 }), {
      code: 'store.wrong_expected_version',
    })
    const byName = (name: string) =>
      exporter.getFinishedSpans().find((s) => s.name === name && s.attributes['eventplane.event_id'] === stale.event_id)
    await eventually(() => byName('eventplane append') !== undefined, 'the append span to end', 10_000)
    for (const name of ['eventplane submit', 'eventplane append']) {
      const span = byName(name)
      assert.ok(span, `a ${name} span was recorded`)
      assert.deepEqual(span.status, { code: SpanStatusCode.ERROR, message: 'store.wrong_expected_version' }, name)
    }
    const ok = exporter
      .getFinishedSpans()
      .find((s) => s.name === 'eventplane submit' && s !== byName('eventplane submit'))
    assert.equal(ok?.status.code, SpanStatusCode.UNSET, 'an accepted submit is not an error')
  })
})
