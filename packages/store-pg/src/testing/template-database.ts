import { randomBytes } from 'node:crypto'
import type { Sql } from 'postgres'
import { DEFAULT_DATABASE_URL, connectPg } from '../connect.ts'
import { migrate } from '../migrate.ts'
import { closePool } from './close-pool.ts'

/**
 * Names a migrated template database on the server of EVENTPLANE_DATABASE_URL. When it is set (scripts/test.sh
 * sets it for the whole suite), {@link createTestDatabase} copies that template instead of applying every
 * migration again: one `migrate` per run instead of one per test database.
 */
export const TEMPLATE_ENV = 'EP_TEST_TEMPLATE_DB'

/** The admin URL of the server the test databases are made on. */
export function serverUrl(): string {
  return process.env.EVENTPLANE_DATABASE_URL ?? DEFAULT_DATABASE_URL
}

/**
 * Creates a database, applies the migrations and makes it a template nobody can connect to (so a copy can never
 * fail on a connection to it). Returns its name, for {@link TEMPLATE_ENV}; {@link dropTemplateDatabase} removes it.
 */
export async function createTemplateDatabase(prefix = 'ep_template'): Promise<string> {
  const name = `${prefix}_${process.pid}_${randomBytes(4).toString('hex')}`.toLowerCase()
  const server = connectPg(serverUrl(), { max: 1 })
  try {
    await server.unsafe(`create database "${name}"`)
    const url = new URL(serverUrl())
    url.pathname = `/${name}`
    const admin = connectPg(url.toString(), { max: 1 })
    try {
      await migrate(admin)
    } finally {
      await closePool(admin)
    }
    // Only now a template: a half-migrated database is never copied. CREATE DATABASE waits (5 s) for the
    // migrating backend, ending just now, to be gone.
    await server.unsafe(`alter database "${name}" with is_template true allow_connections false`)
    return name
  } catch (e) {
    await server.unsafe(`drop database if exists "${name}" with (force)`).catch(() => {})
    throw e
  } finally {
    await closePool(server)
  }
}

/** Drops a template made by {@link createTemplateDatabase}; nothing when it is gone already. */
export async function dropTemplateDatabase(name: string): Promise<void> {
  const server = connectPg(serverUrl(), { max: 1 })
  try {
    const [row] = await server<{ n: number }[]>`select count(*)::int as n from pg_database where datname = ${name}`
    if (row!.n === 0) return
    await server.unsafe(`alter database "${name}" with is_template false allow_connections true`)
    await server.unsafe(`drop database if exists "${name}" with (force)`)
  } finally {
    await closePool(server)
  }
}

/**
 * `CREATE DATABASE name TEMPLATE template` on `server`, then the template's database privileges (CREATE DATABASE
 * copies the contents, not the ACL on the database itself: migration 0012 grants CREATE on it to the owner role).
 * Copies of one template may be made at once; nobody is connected to the template (allow_connections false).
 */
export async function copyTemplateDatabase(server: Sql, template: string, name: string): Promise<void> {
  await server.unsafe(`create database "${name}" template "${template}"`)
  const grants = await server<{ grantee: string | null; privilege: string }[]>`
    select case when a.grantee = 0 then null else a.grantee::regrole::text end as grantee, a.privilege_type as privilege
      from pg_database d, aclexplode(d.datacl) a
     where d.datname = ${template}`
  if (grants.length === 0) return // the default ACL, as the copy has
  await server.unsafe(`revoke all on database "${name}" from public`)
  for (const g of grants) {
    await server.unsafe(`grant ${g.privilege} on database "${name}" to ${g.grantee ?? 'public'}`)
  }
}
