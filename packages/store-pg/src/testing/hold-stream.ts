import type { Sql } from 'postgres'
import type { StreamRef } from '@eventplane/core'
import { holdTransaction } from './hold-transaction.ts'

/** A held stream: appends to it wait in PostgreSQL until `release()`. */
export interface HeldStream {
  /** The backend holding it (what `pg_blocking_pids` of a waiting append shows). */
  pid: number
  /** Rolls the placeholder back: the waiting appends go on as if nothing happened. Idempotent. */
  release(): Promise<void>
}

/**
 * Holds `stream`'s next version with an uncommitted placeholder event, inserted
 * as the superuser in a transaction of its own: appends to the stream wait on
 * that index entry until `release()` rolls it back. The transaction holds an
 * xid meanwhile, so it also holds back the gap-safe read. For tests that need
 * an append in flight at a chosen moment.
 */
export function holdStream(admin: Sql, stream: StreamRef): Promise<HeldStream> {
  return holdTransaction(admin, async (session) => {
    const [row] = await session<{ pid: number }[]>`
      insert into eventplane.events (event_id, tenant_id, kind, category, stream_id, stream_version, type,
        schema_version, data, correlation_id, caused_by, occurred_at)
      select gen_random_uuid(), ${stream.tenant}, 'internal', ${stream.category}, ${stream.id},
             coalesce(max(stream_version), 0) + 1, 'held', 1, '{}', gen_random_uuid(), 'test:held', now()
        from eventplane.events
       where tenant_id = ${stream.tenant} and category = ${stream.category} and stream_id = ${stream.id}
      returning pg_backend_pid() as pid`
    return { pid: row!.pid }
  })
}
