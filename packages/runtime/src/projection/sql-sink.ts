import type { RecordedEvent } from '@eventplane/core'
import { type Sql, type TransactionSql, VIEWS_SCHEMA, pgDriverError, useProjectionSchema } from '@eventplane/store-pg'
import { ProjectionFailed } from '../errors.ts'
import type { ProjectionSink } from './sink.ts'
import { type SqlProjection, checkpointOf, matchesFilter } from './types.ts'

/**
 * Buffers matching events and runs the projection's `apply` on each inside
 * the commit transaction, with `search_path` set to the schema being written:
 * eventplane_views for the live output, a shadow schema during a rebuild.
 */
export class SqlSink implements ProjectionSink {
  readonly #projection: SqlProjection
  #staged: RecordedEvent[] = []
  #sealed: RecordedEvent[] = []
  #schema = VIEWS_SCHEMA

  /** The schema the projection's tables are written in. */
  get schema(): string {
    return this.#schema
  }

  useSchema(schema: string): void {
    this.#schema = schema
  }

  constructor(projection: SqlProjection) {
    this.#projection = projection
  }

  async stage(_sql: Sql, events: readonly RecordedEvent[]): Promise<void> {
    for (const e of events) if (matchesFilter(this.#projection.filter, e)) this.#staged.push(e)
  }

  pending(): number {
    return this.#staged.length
  }

  seal(): void {
    this.#sealed = this.#staged
    this.#staged = []
  }

  async commit(tx: TransactionSql): Promise<void> {
    if (this.#sealed.length > 0) await useProjectionSchema(tx, this.#schema)
    for (const e of this.#sealed) {
      try {
        await this.#projection.apply(tx, e)
      } catch (cause) {
        const driver = pgDriverError(cause)
        if (driver?.code === 'store.unavailable') throw driver
        throw new ProjectionFailed(this.#projection.name, e.event_id, checkpointOf(e), cause)
      }
    }
  }

  committed(): void {
    this.#sealed = []
  }

  reset(): void {
    this.#staged = []
    this.#sealed = []
  }

  async setup(tx: TransactionSql): Promise<void> {
    await useProjectionSchema(tx, this.#schema)
    await this.#projection.setup(tx)
  }

  /** Drops the projection's tables in `schema` (the live ones at a swap). */
  async drop(tx: TransactionSql, schema: string): Promise<void> {
    await useProjectionSchema(tx, schema)
    await this.#projection.drop(tx)
  }
}
