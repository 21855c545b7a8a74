import { createHash } from 'node:crypto'
import { readFile, readdir } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import type { Sql, TransactionSql } from 'postgres'
import { EventplaneError } from '@eventplane/core'
import { mapPgError } from './pg-errors.ts'

/**
 * The package's own `migrations/` folder, resolved from this module, so an
 * installed copy of store-pg (not only this repository) can migrate.
 */
export const MIGRATIONS_DIR = fileURLToPath(new URL('../migrations/', import.meta.url))

export interface Migration {
  version: number
  name: string
  sql: string
  checksum: string
}

export interface MigrateResult {
  applied: string[]
  alreadyApplied: string[]
}

const FILE = /^(\d{4})_([a-z0-9_]+)\.sql$/

export async function loadMigrations(dir: string = MIGRATIONS_DIR): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((f) => FILE.test(f)).sort()
  return Promise.all(
    files.map(async (file) => {
      const m = FILE.exec(file)!
      const sql = await readFile(`${dir}/${file}`, 'utf8')
      return { version: Number(m[1]), name: file, sql, checksum: createHash('sha256').update(sql).digest('hex') }
    }),
  )
}

/**
 * A log whose newest `tx_id` is not below this cluster's next transaction id came from another cluster
 * through a logical dump (pg_dump and pg_restore keep the column, not the counter): every new event would
 * sort before it in the gap-safe order `(tx_id, global_position)`, behind the relay's and the projections'
 * checkpoints, and never be published or applied. Refused before anything is written.
 */
async function refuseLogAheadOfCounter(tx: TransactionSql): Promise<void> {
  const [log] = await tx<{ table: string | null }[]>`select to_regclass('eventplane.events')::text as table`
  if (log?.table == null) return
  const [row] = await tx<{ newest: string | null; next: string }[]>`
    select (select max(tx_id) from eventplane.events)::text as newest,
           pg_snapshot_xmax(pg_current_snapshot())::text as next`
  if (row?.newest == null || BigInt(row.newest) < BigInt(row.next)) return
  throw new EventplaneError(
    'store.migration_failed',
    `the log's newest transaction id ${row.newest} is not below this cluster's next one (${row.next}): ` +
      'a logical dump restored into another cluster, whose new events would never be relayed or projected; ' +
      'restore a physical backup instead, or move each tenant with evtctl export and import (docs/deploying.md)',
    { details: { newest_tx_id: row.newest, next_tx_id: row.next } },
  )
}

/**
 * Applies the versioned migrations not yet recorded, in order, in one
 * transaction (all or nothing); concurrent runners on one database wait for
 * each other. Refuses
 * to go on when an applied file has changed since (its checksum differs).
 */
export async function migrate(sql: Sql, options: { dir?: string } = {}): Promise<MigrateResult> {
  const migrations = await loadMigrations(options.dir)
  const result: MigrateResult = { applied: [], alreadyApplied: [] }
  try {
    await sql.begin(async (tx) => {
      await tx`select pg_advisory_xact_lock(hashtextextended('eventplane.migrate', 0))`
      await refuseLogAheadOfCounter(tx)
      await tx`create schema if not exists eventplane`
      await tx`create table if not exists eventplane.schema_migrations (
        version int primary key, name text not null, checksum text not null,
        applied_at timestamptz not null default now())`
      const done = new Map(
        (
          await tx<{ version: number; checksum: string }[]>`
        select version, checksum from eventplane.schema_migrations`
        ).map((r) => [r.version, r.checksum]),
      )
      for (const m of migrations) {
        const recorded = done.get(m.version)
        if (recorded !== undefined) {
          if (recorded !== m.checksum) {
            throw new EventplaneError('store.migration_failed', `migration ${m.name} changed after it was applied`)
          }
          result.alreadyApplied.push(m.name)
          continue
        }
        await tx.unsafe(m.sql)
        await tx`insert into eventplane.schema_migrations (version, name, checksum) values (${m.version}, ${m.name}, ${m.checksum})`
        result.applied.push(m.name)
      }
    })
  } catch (e) {
    const mapped = mapPgError(e)
    if (mapped instanceof EventplaneError) throw mapped
    throw new EventplaneError('store.migration_failed', `migration failed: ${(e as Error).message.split('\n')[0]}`, {
      cause: e,
    })
  }
  return result
}
