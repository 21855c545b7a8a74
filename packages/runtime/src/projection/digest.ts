import { createHash } from 'node:crypto'
import { type Sql, VIEWS_SCHEMA, scanProjectionStates, typedBegin, useProjectionSchema } from '@eventplane/store-pg'
import { type Projection, isSqlProjection } from './types.ts'

/** A fingerprint of a projection's whole output. */
export interface ProjectionDigest {
  /** sha256, hex, over the canonical rows in their total order. */
  sha256: string
  rows: number
}

const CURSOR_ROWS = 1000

/**
 * Hashes a projection's output: for a reducer, every `(tenant, key, state)` of
 * the projection ordered by tenant and key in byte order (`collate "C"`),
 * with the state in jsonb's canonical text; for a SQL projection, the rows of
 * its `digestQuery` in the query's order. Only the live (complete) output:
 * the live generation of states, the tables in eventplane_views. Streams through a cursor, so memory
 * stays flat. A rebuilt projection equal to the live one has the same digest.
 */
export async function projectionDigest(sql: Sql, projection: Projection): Promise<ProjectionDigest> {
  const hash = createHash('sha256')
  let rows = 0
  if (isSqlProjection(projection)) {
    // The live tables: the query names them unqualified, resolved in eventplane_views.
    await typedBegin(sql, async (tx) => {
      await useProjectionSchema(tx, VIEWS_SCHEMA)
      for await (const batch of tx.unsafe(projection.digestQuery).cursor(CURSOR_ROWS)) {
        for (const row of batch) {
          hash.update(canonicalRow(Object.values(row)))
          rows++
        }
      }
    })
  } else {
    for await (const batch of scanProjectionStates(sql, projection.name, CURSOR_ROWS)) {
      for (const r of batch) {
        hash.update(`${JSON.stringify(r.tenant_id)}\t${JSON.stringify(r.key)}\t${r.state}\n`)
        rows++
      }
    }
  }
  return { sha256: hash.digest('hex'), rows }
}

/** One line per row: values as JSON (bigints as decimal strings, dates as ISO instants). */
function canonicalRow(values: unknown[]): string {
  return `${JSON.stringify(values, (_k, v: unknown) => {
    if (typeof v === 'bigint') return v.toString()
    if (v instanceof Uint8Array) return Buffer.from(v).toString('hex')
    return v
  })}\n`
}
