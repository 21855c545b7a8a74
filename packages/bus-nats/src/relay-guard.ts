import { type Sql, stuckTransactions, terminateStuckTransactions } from '@eventplane/store-pg'
import { type Logger, errorFields } from './logger.ts'

/** The relay's guard against transactions that hold the log back. */
export interface TransactionGuardOptions {
  /**
   * A transaction holding the log back (one of this database, or a prepared
   * one) that began longer ago than this is stuck: logged, and terminated
   * when `terminate` is on (sessions of this database only). Default 30,000 ms (the
   * application roles' idle_in_transaction_session_timeout); at least 1,000.
   */
  stuckAfterMs?: number
  /** Terminate stuck transactions of the log's database (not only report them). Default false. */
  terminate?: boolean
}

export const DEFAULT_STUCK_AFTER_MS = 30_000

/**
 * Watches for transactions that hold back the gap-safe read: it returns
 * nothing committed after the oldest transaction that can still write into
 * this log (eventplane.log_horizon, 0018: one of this database, a prepared
 * one of any database, an xid with no session seen), so one session sitting
 * in a transaction stalls every consumer. Another database's transactions
 * cannot write here and are passed by the read: the guard ignores them too,
 * whatever their age (store-pg's stuckTransactions classifies by the
 * horizon's rule, in one SQL statement). Each check lists the holders older
 * than the bound (pid, database, role, age; a prepared transaction's name;
 * never query text), logs each once, and with `terminate` ends the sessions
 * of the log's database through eventplane.terminate_stuck_transactions
 * (owned by the NOLOGIN eventplane_guard role, the one with
 * pg_signal_backend; the relay may only call that function). Superusers'
 * sessions and prepared transactions are reported, never ended.
 *
 * It runs in the active relay because the relay is what a stuck transaction
 * stalls first, it is always running where the log flows, and its lease makes
 * it one per relay name; the relay's own credential gains only that narrow
 * function, not pg_signal_backend itself.
 */
export class TransactionGuard {
  readonly #sql: Sql
  readonly #logger: Logger
  readonly #fields: object
  readonly stuckAfterMs: number
  readonly terminate: boolean
  /** `pid:xid` of stuck transactions already logged, so each is logged once. */
  #reported = new Set<string>()

  constructor(sql: Sql, logger: Logger, options: TransactionGuardOptions = {}, fields: object = {}) {
    const bound = options.stuckAfterMs ?? DEFAULT_STUCK_AFTER_MS
    if (!Number.isSafeInteger(bound) || bound < 1000)
      throw new RangeError('stuckAfterMs must be an integer of at least 1000')
    this.#sql = sql
    this.#logger = logger
    this.#fields = fields
    this.stuckAfterMs = bound
    this.terminate = options.terminate === true
  }

  /** One look: logs new stuck transactions and, if enabled, terminates them. Never throws (a failure is logged). */
  async check(): Promise<void> {
    try {
      const stuck = await stuckTransactions(this.#sql, this.stuckAfterMs)
      const seen = new Set<string>()
      for (const t of stuck) {
        const id = `${t.pid}:${t.xid}`
        seen.add(id)
        if (this.#reported.has(id)) continue
        this.#reported.add(id)
        this.#logger.warn(
          {
            ...this.#fields,
            pid: t.pid,
            kind: t.kind,
            role: t.role,
            database: t.database,
            xid: t.xid,
            ...(t.gid === null ? {} : { gid: t.gid }),
            age_ms: t.ageMs,
            stuck_after_ms: this.stuckAfterMs,
          },
          'a transaction holds back the log',
        )
      }
      for (const id of this.#reported) if (!seen.has(id)) this.#reported.delete(id)
      if (!this.terminate || stuck.length === 0) return
      for (const t of await terminateStuckTransactions(this.#sql, this.stuckAfterMs)) {
        this.#logger.warn(
          { ...this.#fields, pid: t.pid, role: t.role, xid: t.xid, age_ms: t.ageMs, terminated: t.terminated },
          'terminated a transaction that held back the log',
        )
      }
    } catch (e) {
      this.#logger.warn({ ...this.#fields, ...errorFields(e) }, 'transaction guard check failed')
    }
  }
}
