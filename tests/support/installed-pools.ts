// Copied by tests/adoption.test.ts into a project where npm installed the packed packages, and type-checked there
// (strict, nodenext, skipLibCheck off: every declaration it reaches is checked): one pool from store-pg's
// connectPg, typed with store-pg's re-exported postgres.js types, handed to bus-nats, runtime and evtctl APIs.
// The project installs no postgres of its own; the only copy is the one store-pg bundles.
import type { RelayOptions } from '@eventplane/bus-nats'
import type { CliIo } from '@eventplane/evtctl'
import type { ProjectionRunnerOptions, SqlProjection } from '@eventplane/runtime'
import { type Sql, type TransactionSql, connectPg } from '@eventplane/store-pg'

const sql: Sql = connectPg('postgres://eventplane_relay@127.0.0.1:5432/postgres', { max: 1 })
export const relay: Pick<RelayOptions, 'sql'> = { sql }
export const runner: Pick<ProjectionRunnerOptions, 'sql'> = { sql }
export const projection: SqlProjection = {
  name: 'pool_types',
  version: 1,
  digestQuery: 'select 1',
  async setup(tx: TransactionSql) {
    await tx`create table if not exists pool_types (id text primary key)`
  },
  async apply() {},
  async drop(tx) {
    await tx`drop table if exists pool_types`
  },
}
export type Io = CliIo
