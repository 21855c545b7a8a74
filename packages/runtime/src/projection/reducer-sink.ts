import type { RecordedEvent } from '@eventplane/core'
import { type Sql, type TransactionSql, loadProjectionStates, saveProjectionStates } from '@eventplane/store-pg'
import { ProjectionFailed } from '../errors.ts'
import type { ProjectionSink } from './sink.ts'
import { type ReducerProjection, checkpointOf, matchesFilter } from './types.ts'

interface Entry<S> {
  tenant: string
  key: string
  state: S
}

export interface ReducerSinkOptions {
  /** Clean states kept in memory between commits (default 10,000). */
  cacheSize?: number
}

const SEP = '\u0000'

/**
 * Applies a reducer in memory and writes only the states that changed, once
 * per commit, in one statement. Clean states are kept in a bounded LRU, so a
 * replay reloads a state from PostgreSQL only after it was evicted; memory is
 * bounded by the cache size plus the dirty states of one commit.
 */
export class ReducerSink<S> implements ProjectionSink {
  readonly #projection: ReducerProjection<S>
  readonly #cacheSize: number
  readonly #cache = new Map<string, Entry<S>>()
  #dirty = new Map<string, Entry<S>>()
  /** Sealed states being written by the commit in flight; never mutated. */
  #committing = new Map<string, Entry<S>>()
  /** True when every stored state of this generation is in memory (a new generation, until an eviction). */
  #complete = false
  /** The generation of states read and written (live, or a rebuild's shadow). */
  #generation = 1

  constructor(projection: ReducerProjection<S>, options: ReducerSinkOptions = {}) {
    this.#projection = projection
    this.#cacheSize = options.cacheSize ?? 10_000
  }

  async stage(sql: Sql, events: readonly RecordedEvent[]): Promise<void> {
    const p = this.#projection
    // Stored states of keys neither dirty, sealed nor cached (null: none stored). A commit finishing
    // during a load may evict cached states or retire sealed ones counted on before it, so look
    // again until nothing is missing. From that last look on nothing is awaited, so what it found is
    // what is applied; a loaded state stays valid, as only a commit writes states and none holds these.
    const loaded = new Map<string, Entry<S> | null>()
    for (let missing = this.#missing(events, loaded); missing.size > 0; missing = this.#missing(events, loaded)) {
      const rows = await this.#load(sql, [...missing.values()])
      for (const id of missing.keys()) loaded.set(id, rows.get(id) ?? null)
    }
    for (const event of events) {
      if (!matchesFilter(p.filter, event)) continue
      const key = this.#keyOf(event)
      if (key === null) continue
      const id = event.tenant_id + SEP + key
      let current = this.#dirty.get(id)
      if (current === undefined) {
        const sealed = this.#committing.get(id)
        const cached = this.#cache.get(id)
        const stored = loaded.get(id)
        current = sealed ? { ...sealed } : (cached ?? (stored ? { ...stored } : undefined))
        if (cached !== undefined) this.#cache.delete(id)
        current ??= { tenant: event.tenant_id, key, state: p.initial() }
        this.#dirty.set(id, current)
      }
      try {
        current.state = p.apply(current.state, event)
      } catch (cause) {
        throw new ProjectionFailed(p.name, event.event_id, checkpointOf(event), cause)
      }
    }
  }

  /** Keys of `events` whose state is neither dirty, sealed, cached nor `loaded`; none after a drop (every state is in memory or initial). */
  #missing(
    events: readonly RecordedEvent[],
    loaded: ReadonlyMap<string, unknown>,
  ): Map<string, { tenant: string; key: string }> {
    const missing = new Map<string, { tenant: string; key: string }>()
    if (this.#complete) return missing
    for (const event of events) {
      if (!matchesFilter(this.#projection.filter, event)) continue
      const key = this.#keyOf(event)
      if (key === null) continue
      const id = event.tenant_id + SEP + key
      if (!this.#dirty.has(id) && !this.#committing.has(id) && !this.#cache.has(id) && !loaded.has(id))
        missing.set(id, { tenant: event.tenant_id, key })
    }
    return missing
  }

  pending(): number {
    return this.#dirty.size
  }

  seal(): void {
    this.#committing = this.#dirty
    this.#dirty = new Map()
  }

  async commit(tx: TransactionSql): Promise<void> {
    if (this.#committing.size === 0) return
    await saveProjectionStates(tx, this.#projection.name, this.#generation, [...this.#committing.values()])
  }

  committed(): void {
    for (const [id, entry] of this.#committing) if (!this.#dirty.has(id)) this.#cache.set(id, entry)
    this.#committing = new Map()
    for (const id of this.#cache.keys()) {
      if (this.#cache.size <= this.#cacheSize) break
      this.#cache.delete(id)
      this.#complete = false
    }
  }

  reset(): void {
    this.#cache.clear()
    this.#dirty = new Map()
    this.#committing = new Map()
    this.#complete = false
  }

  /** Reads and writes `generation` from now on; forgets everything cached of another one. */
  useGeneration(generation: number): void {
    if (generation !== this.#generation) this.reset()
    this.#generation = generation
  }

  /** A new generation: nothing is stored in it, so a key never seen is at its initial state. */
  markEmpty(): void {
    this.reset()
    this.#complete = true
  }

  #keyOf(event: RecordedEvent): string | null {
    try {
      return this.#projection.key(event)
    } catch (cause) {
      throw new ProjectionFailed(this.#projection.name, event.event_id, checkpointOf(event), cause)
    }
  }

  async #load(sql: Sql, keys: { tenant: string; key: string }[]): Promise<Map<string, Entry<S>>> {
    const rows = await loadProjectionStates<S>(sql, this.#projection.name, this.#generation, keys)
    return new Map(rows.map((r) => [r.tenant_id + SEP + r.key, { tenant: r.tenant_id, key: r.key, state: r.state }]))
  }
}
