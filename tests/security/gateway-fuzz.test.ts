import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import fc from 'fast-check'
import { type Gateway, PRINCIPAL_HEADER, startGateway } from '@eventplane/bus-nats'
import { type TestNatsServer, startNatsServer } from '@eventplane/bus-nats/testing'
import { EventFactory } from '@eventplane/core'
import { PgEventStore, ROLES } from '@eventplane/store-pg'
import { type TestDatabase, createTestDatabase } from '@eventplane/store-pg/testing'
import { type NatsConnection, headers, nuid } from '@nats-io/transport-node'
import { captureLogger } from './support/capture-logger.ts'
import { EXAMPLE_PLANS, type SubmitPlan, submitPlan } from './support/submit-arbitraries.ts'
import {
  type Expectation,
  type PreStore,
  type ReadyForStore,
  type StoreFacts,
  type StoreTarget,
  checkBeforeStore,
  replyShapeProblems,
  sortedJson,
  storeOutcome,
} from './support/submit-oracle.ts'
import { type FuzzContext, type FuzzRequest, materialize } from './support/submit-requests.ts'

const NUM_RUNS = Number(process.env.EVENTPLANE_FUZZ_RUNS ?? 300)
const SEED = process.env.EVENTPLANE_FUZZ_SEED === undefined ? undefined : Number(process.env.EVENTPLANE_FUZZ_SEED)
const REQUEST_TIMEOUT_MS = 5000
const UUID_SHAPE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

interface Row {
  tenant_id: string
  category: string
  stream_id: string
  kind: string
  type: string
  schema_version: number
  data: unknown
  correlation_id: string
  causation_id: string | null
  caused_by: string
  same_time: boolean
  stream_version: number
  position: string
}

type Reply =
  | { ok: { event_id: string; correlation_id: string; stream_version: number; position: string } }
  | { error: { code: string; message: string } }

describe('gateway under fuzzed submit requests (PostgreSQL as intent_writer, project-run nats-server)', () => {
  let db: TestDatabase
  let server: TestNatsServer
  let gateway: Gateway
  /**
   * Requests go out as the operator (log account), which may publish on every
   * submit subject, so each fuzzed subject reaches the gateway; which tier may
   * send where is the tier matrix's business. Each names its reply in the
   * subject's tenant's inbox space, the only one the gateway answers in from
   * inside the log account.
   */
  let client: NatsConnection
  const log = captureLogger()
  let requests = 0
  /** Replies by outcome (`ok` or the error code), reported as a diagnostic to show what the run covered. */
  const outcomes = new Map<string, number>()
  const ctx: FuzzContext = { accepted: [], valueMarkers: [], keyMarkers: [], currentVersion: (t) => currentVersion(t) }

  async function currentVersion(t: StoreTarget): Promise<number> {
    const [row] = await db.admin<{ v: number }[]>`
      select coalesce(max(stream_version), 0)::int as v from eventplane.events
       where tenant_id = ${t.tenant} and category = ${t.category} and stream_id = ${t.id}`
    return row!.v
  }

  /** `occurredAt` goes in as text: a timestamptz parameter would pass through a JS Date and lose the microseconds. */
  async function rowById(eventId: string, occurredAt: string): Promise<Row | undefined> {
    const [row] = await db.admin<Row[]>`
      select tenant_id, category, stream_id, kind, type, schema_version, data, correlation_id::text, causation_id::text,
             caused_by, occurred_at = ${occurredAt}::text::timestamptz as same_time, stream_version::int, global_position::text as position
        from eventplane.events where event_id = ${eventId}::uuid`
    return row
  }

  const sameContent = (row: Row, ready: ReadyForStore): boolean =>
    row.kind === ready.event.kind &&
    row.type === ready.event.type &&
    row.schema_version === ready.event.schema_version &&
    sortedJson(row.data) === sortedJson(ready.event.data) &&
    row.correlation_id === ready.event.correlation_id &&
    row.causation_id === ready.event.causation_id &&
    row.caused_by === ready.causedBy &&
    row.same_time

  async function inChain(tenant: string, causationId: unknown, correlationId: unknown): Promise<boolean> {
    if (typeof causationId !== 'string') return false
    const rows = await db.admin`select 1 from eventplane.events where event_id = ${causationId}::uuid
      and tenant_id = ${tenant} and correlation_id = ${String(correlationId)}::uuid`
    return rows.length === 1
  }

  async function storeFacts(ready: ReadyForStore): Promise<StoreFacts> {
    const row = await rowById(ready.event.event_id, ready.event.occurred_at as string)
    return {
      parentInChain: await inChain(ready.target.tenant, ready.event.causation_id, ready.event.correlation_id),
      currentVersion: await currentVersion(ready.target),
      existing: row && {
        tenant: row.tenant_id,
        category: row.category,
        id: row.stream_id,
        sameContent: sameContent(row, ready),
      },
    }
  }

  /** The event id a body names, when it is shaped like a UUID (rows for it are counted before and after). */
  function sentEventId(req: FuzzRequest): string | undefined {
    try {
      const id = (JSON.parse(new TextDecoder().decode(req.body)) as { event?: { event_id?: unknown } }).event?.event_id
      return typeof id === 'string' && UUID_SHAPE.test(id) ? id : undefined
    } catch {
      return undefined
    }
  }

  async function counts(eventId: string | undefined): Promise<{ total: number; byId: number }> {
    const [row] = await db.admin<{ total: number; by_id: number }[]>`
      select count(*)::int as total, count(*) filter (where ${eventId ?? null}::uuid is not null and event_id = ${eventId ?? null}::uuid)::int as by_id
        from eventplane.events`
    return { total: row!.total, byId: row!.by_id }
  }

  async function send(req: FuzzRequest): Promise<unknown> {
    const h = req.header === undefined ? undefined : headers()
    h?.set(PRINCIPAL_HEADER, req.header!)
    // The gateway answers only in the subject's tenant's reply space (`_INBOX_<tenant>.`).
    const tenantToken = req.subject.split('.')[2] ?? 'none'
    const msg = await client.request(req.subject, req.body, {
      timeout: REQUEST_TIMEOUT_MS,
      noMux: true,
      reply: `_INBOX_${tenantToken}.${nuid.next()}`,
      ...(h ? { headers: h } : {}),
    })
    return JSON.parse(msg.string())
  }

  async function acceptedProblems(
    ok: Extract<Reply, { ok: unknown }>['ok'],
    expectation: Expectation,
    pre: PreStore,
    delta: number,
  ): Promise<string[]> {
    if (!('ok' in expectation) || !('ready' in pre))
      return [`accepted, but the model refuses it (${'why' in expectation ? expectation.why : ''})`]
    const { ready } = pre
    const row = await rowById(ok.event_id, ready.event.occurred_at as string)
    const problems: string[] = []
    if (ok.event_id !== ready.event.event_id)
      problems.push(`ok.event_id ${ok.event_id} is not the sent ${ready.event.event_id}`)
    if (ok.correlation_id !== ready.event.correlation_id) problems.push('ok.correlation_id is not the sent one')
    if (row === undefined) return [...problems, 'accepted, but no row holds the event id']
    if (
      row.tenant_id !== ready.target.tenant ||
      row.category !== ready.target.category ||
      row.stream_id !== ready.target.id
    )
      problems.push('stored in another stream than the subject names')
    if (!sameContent(row, ready))
      problems.push(`stored content differs from what was sent: ${JSON.stringify(row).slice(0, 300)}`)
    if (row.position !== ok.position || row.stream_version !== ok.stream_version)
      problems.push('reply position/version differ from the row')
    if (delta !== (expectation.ok === 'new' ? 1 : 0))
      problems.push(`${delta} rows written for a ${expectation.ok} append`)
    return problems
  }

  function refusedProblems(
    error: Extract<Reply, { error: unknown }>['error'],
    expectation: Expectation,
    written: { total: number; byId: number },
  ): string[] {
    const problems: string[] = []
    if ('ok' in expectation)
      problems.push(`refused a request the model accepts (${expectation.ok}): ${error.code}: ${error.message}`)
    else if (!expectation.refused.has(error.code as never))
      problems.push(
        `${error.code} (${error.message}), expected one of ${[...expectation.refused].join(' | ')} (${expectation.why})`,
      )
    if (written.total !== 0 || written.byId !== 0)
      problems.push(`refused, yet rows changed (total ${written.total}, for its event id ${written.byId})`)
    return problems
  }

  const describeRequest = (req: FuzzRequest): string =>
    `subject=${JSON.stringify(req.subject.slice(0, 200))} header=${JSON.stringify(req.header)} size=${req.body.byteLength} body=${JSON.stringify(new TextDecoder().decode(req.body.subarray(0, 400)))}`

  async function runCase(plan: SubmitPlan): Promise<void> {
    const req = await materialize(plan, ctx)
    requests++
    const pre = checkBeforeStore(req)
    const expectation: Expectation = 'ready' in pre ? storeOutcome(pre.ready, await storeFacts(pre.ready)) : pre
    const eventId = sentEventId(req)
    const before = await counts(eventId)
    let reply: unknown
    try {
      reply = await send(req)
    } catch (e) {
      throw new Error(`no usable reply (${e instanceof Error ? e.message : String(e)}) to ${describeRequest(req)}`)
    }
    const after = await counts(eventId)
    const problems = replyShapeProblems(reply)
    if (problems.length === 0) {
      const r = reply as Reply
      const outcome = 'ok' in r ? `ok (${'ok' in expectation ? expectation.ok : '?'})` : r.error.code
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1)
      if ('ok' in r) {
        problems.push(...(await acceptedProblems(r.ok, expectation, pre, after.total - before.total)))
        if ('ready' in pre && 'ok' in expectation && expectation.ok === 'new') {
          const { event } = JSON.parse(new TextDecoder().decode(req.body)) as { event: Record<string, unknown> }
          ctx.accepted.push({ subject: req.subject, event, header: req.header, target: pre.ready.target })
        }
      } else {
        problems.push(
          ...refusedProblems(r.error, expectation, {
            total: after.total - before.total,
            byId: after.byId - before.byId,
          }),
        )
      }
    }
    if (problems.length > 0)
      throw new Error(
        `${problems.join('; ')}\n  request: ${describeRequest(req)}\n  reply: ${JSON.stringify(reply).slice(0, 400)}`,
      )
  }

  before(async () => {
    db = await createTestDatabase('ep_gwfuzz')
    server = await startNatsServer({ tenants: ['acme', 'globex'] })
    gateway = await startGateway({
      nc: await server.connect('gateway'),
      store: new PgEventStore(db.connect(ROLES.intentWriter, 4)),
      logger: log.logger,
      // The fuzz is about validation: requests come as fast as the gateway answers, never rate limited.
      limits: { perTenant: { ratePerSecond: Number.POSITIVE_INFINITY, bytesPerSecond: Number.POSITIVE_INFINITY } },
    })
    client = await server.connect('operator')
  })
  after(async () => {
    await gateway?.stop()
    await server?.stop()
    await db?.drop()
  })

  test('every reply is a typed ok or error, and exactly the valid intents are written, as sent', async (t) => {
    await fc.assert(fc.asyncProperty(submitPlan, runCase), {
      numRuns: NUM_RUNS,
      seed: SEED,
      examples: EXAMPLE_PLANS.map((plan): [SubmitPlan] => [plan]),
      interruptAfterTimeLimit: 40_000,
      markInterruptAsFailure: true,
      includeErrorInReport: true,
    })
    t.diagnostic(
      `${requests} requests: ${JSON.stringify(Object.fromEntries([...outcomes].sort()))}; data key markers: ${ctx.keyMarkers.length}`,
    )
    assert.ok(ctx.accepted.length > 0, 'some fuzzed requests were valid and accepted')
  })

  test('the gateway log never carries a data value of a fuzzed request', () => {
    assert.ok(requests > 0)
    assert.equal(
      log.lines.filter((l) => /"msg":"intent (recorded|refused)"/.test(l)).length,
      requests,
      'one log line per request was captured',
    )
    const text = log.lines.join('\n')
    assert.deepEqual(
      ctx.valueMarkers.filter((m) => text.includes(m)),
      [],
    )
  })

  const factory = EventFactory.forTenant('acme', { causedBy: 'user:fuzz' })
  const sendEvent = (subject: string, event: object): Promise<unknown> =>
    send({
      subject,
      body: new TextEncoder().encode(JSON.stringify({ event })),
      header: undefined,
      principal: undefined,
    })

  test('the gateway log never carries a data key either', async () => {
    const key = `mkk${ctx.keyMarkers.length}qdirect`
    ctx.keyMarkers.push(key)
    // Built past the factory, which would refuse the NUL on this side already.
    const event = {
      ...factory.intent({ category: 'keys', id: 'k1' }, 'fuzzed', {}),
      data: { [key]: { inner: 'a\u0000b' } },
    }
    const reply = await sendEvent('eventplane-api.submit.acme.keys.k1', event)
    assert.equal((reply as { error?: { code?: string } }).error?.code, 'core.invalid_data')
    const text = log.lines.join('\n')
    assert.deepEqual(
      ctx.keyMarkers.filter((m) => text.includes(m)),
      [],
    )
  })

  test('an occurred_at that Date.parse takes but PostgreSQL cannot store is refused as core.invalid_envelope, never bus.internal', async () => {
    const problems: string[] = []
    for (const occurredAt of [
      '2024-02-30T00:00:00Z',
      '2023-02-29T12:00:00Z',
      '2024-04-31T08:00:00+02:00',
      '0000-01-01T00:00:00Z',
      '2024-01-01T00:00:00+16:00',
      '2024-01-01T00:00:00-23:59',
    ]) {
      const event = {
        ...factory.intent({ category: 'calendar', id: 'c1' }, 'fuzzed', { n: 1 }),
        occurred_at: occurredAt,
      }
      const before = await counts(event.event_id)
      const reply = (await sendEvent('eventplane-api.submit.acme.calendar.c1', event)) as Reply
      const after = await counts(event.event_id)
      if (!('error' in reply) || reply.error.code !== 'core.invalid_envelope')
        problems.push(`${occurredAt}: ${JSON.stringify(reply)}`)
      if (after.total !== before.total) problems.push(`${occurredAt}: rows written`)
    }
    assert.deepEqual(problems, [])
  })
})
