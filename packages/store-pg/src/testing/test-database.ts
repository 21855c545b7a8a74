import { perSuite } from './per-suite.ts'
import { randomBytes } from 'node:crypto'
import type { Sql } from 'postgres'
import { type RoleName, connectPg, roleUrl } from '../connect.ts'
import { migrate } from '../migrate.ts'
import { closePool } from './close-pool.ts'
import { TEMPLATE_ENV, copyTemplateDatabase, serverUrl } from './template-database.ts'

export interface TestDatabase {
  name: string
  /** Admin (superuser) URL of the new database. */
  url: string
  /** Admin pool on the new database. */
  admin: Sql
  /** URL of the new database for one application role. */
  roleUrl(role: RoleName): string
  /** A pool connected as `role`; closed by `drop()`. */
  connect(role: RoleName, max?: number): Sql
  /** Closes every pool and drops the database WITH (FORCE). */
  drop(): Promise<void>
}

/**
 * Creates a fresh database on the server of EVENTPLANE_DATABASE_URL (default
 * the local one), applies the migrations, and returns handles to it. Each test
 * file gets its own, so parallel runs never see each other's events. With
 * EP_TEST_TEMPLATE_DB set (the whole suite), a migrated database is a copy
 * of that template instead (see template-database.ts); `migrate: false` is
 * always an empty database.
 */
export async function createTestDatabase(
  prefix = 'ep_test',
  options: { migrate?: boolean } = {},
): Promise<TestDatabase> {
  const base = serverUrl()
  const name = `${prefix}_${process.pid}_${randomBytes(4).toString('hex')}`.toLowerCase()
  const template = options.migrate !== false ? process.env[TEMPLATE_ENV] : undefined
  const server = connectPg(base, { max: 1 })
  try {
    if (template) await copyTemplateDatabase(server, template, name)
    else await server.unsafe(`create database "${name}"`)
  } finally {
    await closePool(server)
  }
  const url = new URL(base)
  url.pathname = `/${name}`
  const admin = connectPg(url.toString(), { max: 4 })
  if (options.migrate !== false && !template) await migrate(admin)
  const pools: Sql[] = []
  return {
    name,
    url: url.toString(),
    admin,
    roleUrl: (role) => roleUrl(url.toString(), role, {}),
    connect(role, max = 10) {
      const sql = connectPg(roleUrl(url.toString(), role, {}), { max })
      pools.push(sql)
      return sql
    },
    async drop() {
      await Promise.all([admin, ...pools].map((p) => closePool(p)))
      const s = connectPg(base, { max: 1 })
      try {
        await s.unsafe(`drop database if exists "${name}" with (force)`)
      } finally {
        await closePool(s)
      }
    },
  }
}

/** A {@link createTestDatabase} for the enclosing `describe`: made before its tests, dropped after them. */
export function useTestDatabase(prefix?: string, options: { migrate?: boolean } = {}): TestDatabase {
  return perSuite(
    () => createTestDatabase(prefix, options),
    (db) => db.drop(),
  )
}
