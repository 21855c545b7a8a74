import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { trace } from '@opentelemetry/api'
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base'
import { EventFactory } from '@eventplane/core'
import { PgEventStore, ROLES } from '@eventplane/store-pg'
import { createTestDatabase, eventually, type TestDatabase } from '@eventplane/store-pg/testing'
import { type LiveDelivery, type LiveSource, ProjectionRunner } from '@eventplane/runtime'
import { streamCounter } from '../../packages/runtime/test/fixtures.ts'

/**
 * The projection hop of docs/operating.md's trace table: one `eventplane project` span per live batch, whose
 * parent is the batch's first delivery's `traceparent` (mutation audit 2026-12-02, mutrand2: the last
 * delivery's went unseen; tests/ops/trace.test.ts follows one event, a batch of one).
 */
describe('trace: the projection hop', () => {
  const exporter = new InMemorySpanExporter()
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
  let db: TestDatabase
  let runner: ProjectionRunner | undefined

  before(async () => {
    trace.setGlobalTracerProvider(provider)
    db = await createTestDatabase('ep_trace_projection')
  })
  after(async () => {
    await runner?.stop()
    await db?.drop()
    trace.disable()
    await provider.shutdown()
  })

  test("a live batch of two deliveries is one span, under the first delivery's traceparent", async () => {
    const s = { tenant: 'acme', category: 'deployment', id: 'traced' }
    const f = EventFactory.forTenant('acme', { causedBy: 'user:ops' })
    await new PgEventStore(db.connect(ROLES.intentWriter, 1)).append(s, [
      f.intent(s, 'created', {}),
      f.intent(s, 'scaled', {}),
    ])
    const events = await new PgEventStore(db.connect(ROLES.reader, 1)).readStreamToArray(s)
    const parents = ['a'.repeat(32), 'b'.repeat(32)]
    const deliveries: LiveDelivery[] = events.map((event, i) => ({
      event,
      deliveryCount: 1,
      redelivered: false,
      ack: () => {},
      nak: () => {},
      term: () => {},
      traceparent: `00-${parents[i]}-${'1'.repeat(16)}-01`,
    }))
    // Both deliveries at once, then nothing until the runner stops: one batch (linger 50 ms).
    const live: LiveSource = {
      prepare: async () => {},
      async open(signal) {
        let end!: () => void
        const ended = new Promise<void>((resolve) => (end = resolve))
        signal.addEventListener('abort', () => end(), { once: true })
        return {
          async *[Symbol.asyncIterator]() {
            yield* deliveries
            await ended
          },
          stop: async () => end(),
          closed: ended,
        }
      },
    }
    runner = new ProjectionRunner({
      projection: streamCounter,
      sql: db.connect(ROLES.projector, 4),
      live,
      lingerMs: 50,
    })
    await runner.start()
    const project = (): ReadableSpan | undefined =>
      exporter.getFinishedSpans().find((x) => x.name === 'eventplane project')
    await eventually(async () => project() !== undefined, 60_000, 'the live batch to be applied')
    const span = project()!
    assert.equal(span.attributes['eventplane.batch_size'], 2, 'one span for the batch')
    assert.equal(span.spanContext().traceId, parents[0], "in the first delivery's trace")
    assert.equal(span.parentSpanContext?.traceId, parents[0])
    assert.equal(span.attributes['eventplane.event_id'], events[0]!.event_id)
  })
})
