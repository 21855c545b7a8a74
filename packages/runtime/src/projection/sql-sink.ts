import type { RecordedEvent } from '@eventplane/core'
import { pgDriverError } from '@eventplane/store-pg'
import type { Sql, TransactionSql } from 'postgres'
import { ProjectionFailed } from '../errors.ts'
import type { ProjectionSink } from './sink.ts'
import { type SqlProjection, checkpointOf, matchesFilter } from './types.ts'

/** Buffers matching events and runs the projection's `apply` on each inside the commit transaction. */
export class SqlSink implements ProjectionSink {
  readonly #projection: SqlProjection
  #staged: RecordedEvent[] = []
  #sealed: RecordedEvent[] = []

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

  setup(tx: TransactionSql): Promise<void> {
    return this.#projection.setup(tx)
  }

  drop(tx: TransactionSql): Promise<void> {
    return this.#projection.drop(tx)
  }
}
