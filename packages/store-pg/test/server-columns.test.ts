import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import { PgEventStore, ROLES, type RoleName } from '@eventplane/store-pg'
import { createTestDatabase, type TestDatabase } from '@eventplane/store-pg/testing'
import { factoryFor, stream } from './helpers.ts'

/** Every role an application or operator logs in as. */
const APP_ROLES: RoleName[] = [
  ROLES.intentWriter,
  ROLES.factWriter,
  ROLES.reader,
  ROLES.relay,
  ROLES.projector,
  ROLES.operator,
]

/** Stream versions (and negative positions) for the attempts, so accepted ones never collide with each other. */
let version = 2

/**
 * A direct INSERT of one acme event into stream `forged`, choosing one column
 * the store must assign. Each would break the log: an old tx_id is never read
 * by a gap-safe reader past it, a chosen position or time lies about the
 * order, a version gap breaks continuity, a chosen caused_by forges the actor.
 */
const FORGED: Record<string, (kind: string) => string> = {
  tx_id: (kind) => insert(kind, { tx_id: `'6'::xid8` }),
  global_position: (kind) => insert(kind, { global_position: `-${version++}` }, 'overriding system value'),
  recorded_at: (kind) => insert(kind, { recorded_at: `'2001-01-01T00:00:00Z'` }),
  stream_version: (kind) => insert(kind, { stream_version: `${999 + version++}` }),
  caused_by: (kind) => insert(kind, { caused_by: `'controller:deployments'` }),
}

function insert(kind: string, forged: Record<string, string>, overriding = ''): string {
  const columns: Record<string, string> = {
    event_id: `'${randomUUID()}'`,
    tenant_id: `'acme'`,
    kind: `'${kind}'`,
    category: `'deployment'`,
    stream_id: `'forged'`,
    stream_version: `${version++}`,
    type: `'created'`,
    schema_version: '1',
    data: `'{}'`,
    correlation_id: `'${randomUUID()}'`,
    caused_by: `'user:mallory'`,
    occurred_at: 'now()',
    ...forged,
  }
  return `insert into eventplane.events (${Object.keys(columns).join(', ')}) ${overriding}
          values (${Object.values(columns).join(', ')})`
}

describe('server-assigned columns', () => {
  let db: TestDatabase
  const rows = async () =>
    db.admin<
      { n: number; max_tx: string }[]
    >`select count(*)::int as n, max(tx_id)::text as max_tx from eventplane.events`

  before(async () => {
    db = await createTestDatabase('ep_server_columns')
    const s = stream('acme', 'forged')
    await new PgEventStore(db.connect(ROLES.intentWriter, 1)).append(s, [factoryFor('acme').intent(s, 'created', {})])
  })
  after(() => db.drop())

  test('no application role can choose tx_id, position, recorded_at, stream_version or caused_by by a direct INSERT', async () => {
    const before = await rows()
    const accepted: string[] = []
    for (const role of APP_ROLES) {
      const sql = db.connect(role, 1)
      for (const [column, statement] of Object.entries(FORGED)) {
        for (const kind of ['intent', 'fact']) {
          // Each attempt commits if accepted; a refusal must be the privilege error, nothing else.
          const refused = await sql
            .begin(async (tx) => {
              await tx`select set_config('eventplane.tenant', 'acme', true)`
              await tx.unsafe(statement(kind))
            })
            .then(
              () => undefined,
              (e: { code?: string }) => e.code,
            )
          if (refused === undefined) accepted.push(`${role} ${kind} ${column}`)
          else assert.equal(refused, '42501', `${role} ${kind} ${column}`)
        }
      }
    }
    assert.deepEqual(accepted, [], 'every forged insert is refused')
    assert.deepEqual(await rows(), before, 'nothing was written')
  })

  test('the append functions take envelope fields only: the server assigns tx_id, version, time and hash', async () => {
    const sql = db.connect(ROLES.intentWriter, 1)
    const f = factoryFor('acme')
    const s = stream('acme', 'payload')
    const e = f.intent(s, 'created', {})
    const [row] = await sql<{ tx_id: string; stream_version: string; current: string; recorded_at: Date }[]>`
      select a.tx_id::text, a.stream_versions[1]::text as stream_version, pg_current_xact_id()::text as current, a.recorded_at
        from eventplane.append_intents('acme', 'deployment', 'payload', -1, ${[e.event_id]}::uuid[], ${[e.kind]}::text[],
          ${[e.type]}::text[], ${[e.schema_version]}::smallint[], ${sql.json([e.data] as never)}, ${[e.correlation_id]}::uuid[],
          ${[e.causation_id]}::uuid[], ${[e.caused_by]}::text[], ${[e.occurred_at]}::timestamptz[], false) a`
    assert.equal(row!.tx_id, row!.current, 'tx_id is the appending transaction')
    assert.equal(row!.stream_version, '1', 'versions continue the stream')
    assert.ok(row!.recorded_at.getUTCFullYear() > 2001, 'recorded_at is the server time')
    const [stored] = await db.admin<{ ok: boolean }[]>`
      select e.hash = eventplane.chain_link(null, e) as ok from eventplane.events e where e.event_id = ${e.event_id}`
    assert.equal(stored!.ok, true, 'the hash is the server-computed link')
  })
})
