import type { Server } from 'node:net'
import type { Logger } from '@eventplane/bus-nats'
import { PgEventStore, ROLES, type Sql, roleUrl } from '@eventplane/store-pg'
import { postgres } from '@eventplane/store-pg/testing'
import { cut, forward, freePort } from './forwarder.ts'
import type { LiveHarness } from './harness.ts'
import { within } from './helpers.ts'

/** Items as they come, and a wait for the first one that matches. */
export class Recorder<T> {
  readonly items: T[] = []
  readonly #waiters: { match: (t: T) => boolean; resolve: (t: T) => void }[] = []

  push(item: T): void {
    this.items.push(item)
    for (const w of this.#waiters.filter((w) => w.match(item))) {
      this.#waiters.splice(this.#waiters.indexOf(w), 1)
      w.resolve(item)
    }
  }

  /**
   * The first item that matches `match`, recorded already or to come; with `ms`, fails after it naming
   * `what` (without, it may never settle: for a race, with no timer left behind).
   */
  until(match: (t: T) => boolean, ms?: number, what = 'item'): Promise<T> {
    const found = this.items.find(match)
    if (found !== undefined) return Promise.resolve(found)
    const next = new Promise<T>((resolve) => this.#waiters.push({ match, resolve }))
    return ms === undefined ? next : within(next, ms, what)
  }
}

export interface LogLine {
  level: string
  msg: string
  fields: Record<string, unknown>
  /** Date.now() when logged. */
  at: number
}

/** A logger that records its lines (fields are ids and codes only); `lines.until(…)` waits for one. */
export function recordingLogger(): { logger: Logger; lines: Recorder<LogLine> } {
  const lines = new Recorder<LogLine>()
  const log =
    (level: string) =>
    (fields: object, msg = ''): void =>
      lines.push({ level, msg, fields: fields as Record<string, unknown>, at: Date.now() })
  return { logger: { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') }, lines }
}

/** A line of a runner holding a delivery of `eventId` for an unavailable dependency (reconciling, recording or parking). */
export const holds =
  (eventId: string) =>
  (l: LogLine): boolean =>
    l.fields.event_id === eventId && l.msg.includes('waits for an unavailable dependency')

/**
 * PostgreSQL as a controller sees it through a TCP forwarder: `store()` is a fact writer pool on the
 * forwarder's port, `restore()` starts forwarding ("the database came up"), `cut()` closes it and
 * destroys every forwarded connection ("it went away"). Unreachable until the first `restore()`.
 */
export class PgOutage {
  readonly #port: number
  readonly #target: URL
  readonly #pools: Sql[] = []
  #proxy: Server | undefined

  private constructor(h: LiveHarness, port: number) {
    this.#port = port
    this.#target = new URL(roleUrl(h.db.url, ROLES.factWriter))
  }

  static async start(h: LiveHarness): Promise<PgOutage> {
    return new PgOutage(h, await freePort())
  }

  /**
   * A new fact writer pool through the forwarder: what a restarted process would open. It reconnects every
   * 50 ms (postgres.js's own backoff grows to 20 s after a few refusals: the test would wait that long
   * after `restore()`).
   */
  store(): PgEventStore {
    const url = new URL(this.#target)
    url.port = String(this.#port)
    const sql: Sql = postgres(url.toString(), { max: 2, connect_timeout: 2, onnotice: () => {}, backoff: () => 0.05 })
    this.#pools.push(sql)
    return new PgEventStore(sql)
  }

  async restore(): Promise<void> {
    if (!this.#proxy?.listening) this.#proxy = await forward(this.#port, this.#target)
  }

  async cut(): Promise<void> {
    if (this.#proxy?.listening) await cut(this.#proxy)
  }

  async stop(): Promise<void> {
    for (const sql of this.#pools) await sql.end({ timeout: 1 }).catch(() => {})
    await this.cut()
  }
}
