/**
 * pnpm tsx scripts/bench/read-functions.ts [--rounds 8] [--calls 100] [--only stream1k,category] [--role reader|relay]
 * — the tenant-scoped read functions before and after migration 0017, on one database, as store-pg calls
 * them (postgres.js, a named prepared statement, rows as arrays): the backend's CPU per call
 * (`/proc/<pid>/schedstat`), old and new alternated in blocks of `--calls` calls, medians and the median
 * of the per-round new ÷ old ratios. The database is migrated without 0017, the functions as they were
 * are copied into schema `bench`, then 0017 is applied (`eventplane.*` is the new code). Data: two
 * tenants (t1, t2) of 201,010 events each, written in transactions of 1,000 per tenant, interleaved:
 * per tenant a stream of 100,000 events (`deployment/s100k`), one of 1,000 (`s1k`, one correlation
 * chain) and one of 10 (`s10`), and 10,000 streams of 10 (`order/o<n>`, each one chain).
 */
import { mkdtempSync, readdirSync, copyFileSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { MIGRATIONS_DIR, ROLES, type RoleName, type Sql, migrate } from '@eventplane/store-pg'
import { EVENT_COLUMNS } from '../../packages/store-pg/src/sql/event-columns.ts'
import { argString, argValue, backendCpuNs, backendPid, median, benchDatabase } from './lib.ts'

const ROUNDS = argValue('rounds', 8)
const CALLS = argValue('calls', 100)
const ROLE = (argString('role', 'reader') === 'relay' ? ROLES.relay : ROLES.reader) as RoleName
const NEW_MIGRATION = '0017_reads_inlined.sql'

/**
 * name → [function, parameters (typed as store-pg/src/sql types them), values, columns selected]: the
 * calls of store-pg/src/sql, with parameters, so the plan cache treats them as it does there.
 */
type Case = [string, string, (string | number | boolean | null)[], string]
const C1 = '51c74183-aa3a-bd1d-5a7e-42b70e8e0fc2' // md5('t1:o5'): a chain of 10
const C2 = 'dc0c9162-6829-fdd9-4bc1-6f30452d096a' // md5('t1:s1k'): a chain of 1,000 (checked below)
const STREAM = '$1, $2, $3, $4, $5, $6'
const CASES: Record<string, Case> = {
  stream10: ['read_stream', STREAM, ['t1', 'deployment', 's10', 1, false, 1000], EVENT_COLUMNS],
  stream1k: ['read_stream', STREAM, ['t1', 'deployment', 's1k', 1, false, 1000], EVENT_COLUMNS],
  'stream100k@50000': ['read_stream', STREAM, ['t1', 'deployment', 's100k', 50000, false, 1000], EVENT_COLUMNS],
  'stream100k backward': ['read_stream', STREAM, ['t1', 'deployment', 's100k', 100000, true, 1000], EVENT_COLUMNS],
  category: ['read_category', '$1, $2, $3::xid8, $4::bigint, $5', ['t1', 'order', '0', '0', 1000], EVENT_COLUMNS],
  correlation10: ['read_correlation', '$1, $2::uuid, $3', ['t1', C1, 10000], EVENT_COLUMNS],
  correlation1k: ['read_correlation', '$1, $2::uuid, $3', ['t1', C2, 10000], EVENT_COLUMNS],
  tenantPage: ['read_all_for_tenant', '$1, $2::xid8, $3::bigint, $4', ['t1', '0', '0', 1000], EVENT_COLUMNS],
}
const ONLY = argString('only', Object.keys(CASES).join(',')).split(',')

const LOAD = `
DO $$
BEGIN
  FOR b IN 0..201 LOOP
    INSERT INTO eventplane.events (event_id, tenant_id, kind, category, stream_id, stream_version, type,
      schema_version, data, correlation_id, causation_id, caused_by, occurred_at, hash)
    SELECT x.eid, t, 'intent', v.cat, v.sid, v.ver, 'scaled', 1,
           jsonb_build_object('replicas', g % 7, 'image', 'nginx:1.27', 'n', g,
                              'note', 'a note of some fifty characters, to pad the payload'),
           x.corr, null, 'user:bench', now(), decode(md5(t || g) || md5(g || t), 'hex')
      FROM unnest(ARRAY['t1', 't2']) t, generate_series(b * 1000, least(b * 1000 + 999, 201009)) g,
      LATERAL (SELECT
        CASE WHEN g >= 200000 OR g % 2 = 0 THEN 'deployment' ELSE 'order' END AS cat,
        CASE WHEN g >= 201000 THEN 's10' WHEN g >= 200000 THEN 's1k' WHEN g % 2 = 0 THEN 's100k'
             ELSE 'o' || ((g - 1) / 2 % 10000) END AS sid,
        CASE WHEN g >= 201000 THEN g - 200999 WHEN g >= 200000 THEN g - 199999 WHEN g % 2 = 0 THEN g / 2 + 1
             ELSE (g - 1) / 2 / 10000 + 1 END AS ver) v,
      LATERAL (SELECT
        CASE WHEN v.cat = 'order' AND v.ver = 1 THEN md5(t || ':' || v.sid)::uuid
             WHEN v.sid = 's1k' AND v.ver = 1 THEN md5(t || ':s1k')::uuid
             ELSE md5(t || ':' || g)::uuid END AS eid,
        CASE WHEN v.cat = 'order' THEN md5(t || ':' || v.sid)::uuid
             WHEN v.sid = 's1k' THEN md5(t || ':s1k')::uuid
             ELSE md5(t || ':' || g)::uuid END AS corr) x;
    COMMIT;
  END LOOP;
END $$`

const FUNCTIONS = ['read_stream', 'read_category', 'read_correlation', 'read_all_for_tenant']

async function prepare(admin: Sql, url: string): Promise<void> {
  const before = mkdtempSync(join(tmpdir(), 'ep-mig-'))
  for (const f of readdirSync(MIGRATIONS_DIR))
    if (f.endsWith('.sql') && f < NEW_MIGRATION) copyFileSync(join(MIGRATIONS_DIR, f), join(before, f))
  await migrate(admin, { dir: before })
  await admin.unsafe(`create schema bench authorization eventplane_owner; grant usage on schema bench to public`)
  for (const { def } of await admin<{ def: string }[]>`select pg_get_functiondef(p.oid) as def from pg_proc p
      where p.pronamespace = 'eventplane'::regnamespace and p.proname = any(${FUNCTIONS})`)
    await admin.unsafe(def.replace('FUNCTION eventplane.', 'FUNCTION bench.'))
  await admin.unsafe(`grant execute on all functions in schema bench to public`)
  await admin.unsafe(readFileSync(join(MIGRATIONS_DIR, NEW_MIGRATION), 'utf8'))
  // A DO block that commits needs a connection outside a transaction: postgres.js runs it as one simple query.
  await admin.unsafe(LOAD)
  await admin`vacuum analyze eventplane.events`
  console.error(`loaded ${url.replace(/\/\/[^@]*@/, '//')}`)
}

const db = await benchDatabase('readfn', { migrate: false })
try {
  await prepare(db.admin, db.url)
  const sql = db.connect(ROLE, 1)
  const pid = await backendPid(sql)
  const [c2] = await db.admin<{ id: string }[]>`select md5('t1:s1k')::uuid::text as id`
  if (c2!.id !== C2) throw new Error(`C2 should be ${c2!.id}`)
  const run = (schema: string, [fn, params, values, cols]: Case) =>
    sql.unsafe(`select ${cols} from ${schema}.${fn}(${params}) e`, values as never[], { prepare: true }).values()
  const rows: Record<string, string | number>[] = []
  for (const name of ONLY) {
    const c = CASES[name]!
    for (let i = 0; i < 10; i++) for (const s of ['bench', 'eventplane']) await run(s, c)
    const per: Record<string, number[]> = { bench: [], eventplane: [] }
    for (let r = 0; r < ROUNDS; r++) {
      for (const s of r % 2 === 0 ? ['bench', 'eventplane'] : ['eventplane', 'bench']) {
        const t0 = backendCpuNs(pid)
        for (let i = 0; i < CALLS; i++) await run(s, c)
        per[s]!.push((backendCpuNs(pid) - t0) / CALLS / 1e6)
      }
    }
    const ratio = per.eventplane!.map((n, i) => n / per.bench![i]!)
    const load = readFileSync('/proc/loadavg', 'utf8').split(' ')[0]!
    rows.push({
      case: name,
      'old ms/call': median(per.bench!).toFixed(3),
      'new ms/call': median(per.eventplane!).toFixed(3),
      'new/old': median(ratio).toFixed(2),
      rounds: ratio.map((x) => x.toFixed(2)).join(' '),
      load,
    })
    console.log(JSON.stringify(rows.at(-1)))
  }
  console.table(rows)
} finally {
  await db.drop()
}
