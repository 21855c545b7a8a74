import type { Checkpoint, RecordedEvent } from '@eventplane/core'
import type { Sql } from 'postgres'
import { typedCursor } from './pg-errors.ts'
import { mapAndRelease, toRecordedEvent } from './rows.ts'
import { streamLogSql } from './sql/stream-log.ts'

export interface StreamLogOptions {
  /** Start after this checkpoint. */
  from: Checkpoint
  /** Rows per fetch from the cursor (default 1,000): what is held in memory at once. */
  batchSize?: number
  signal?: AbortSignal
}

/**
 * The gap-safe global order after `from` as one streamed statement (a
 * cursor), in batches: what a rebuild reads. One snapshot for the whole
 * stream, so events committed after it starts are not in it: continue with
 * `readAll` from the last event to catch up. The statement holds one pooled
 * connection and, while it runs, VACUUM's horizon (no xid, so it holds back
 * no gap-safe read); the consumer must keep pulling (the projector role's
 * `idle_in_transaction_session_timeout` ends a stream left idle). Needs a
 * cross-tenant role (projector, relay, operator).
 */
export async function* streamLog(sql: Sql, options: StreamLogOptions): AsyncGenerator<RecordedEvent[]> {
  for await (const rows of typedCursor(streamLogSql(sql, options.from, options.batchSize ?? 1000), options.signal)) {
    yield mapAndRelease(rows, toRecordedEvent)
  }
}
