import { after, before } from 'node:test'
import { PgEventStore, ROLES, type Sql, isPgWriteAfterClose } from '@eventplane/store-pg'
import { createTestDatabase, type TestDatabase } from '@eventplane/store-pg/testing'
import { PROJECTOR_ROLE } from '../../src/roles.ts'
import { factoryFor } from '../helpers.ts'

export interface TerminatedProjectorBench {
  /** Set in `before`. */
  db: TestDatabase
  /** A pool of 4 as the projector role, whose sessions the tests terminate. */
  projector: Sql
  /** Uncaught exceptions but the driver's ROLLBACK write (porsager/postgres#1208), which node:test would fail on. */
  readonly otherUncaught: unknown[]
}

/**
 * For tests that terminate projector sessions: a test database named after `name` with `events` intents of acme in
 * `ref`, a projector pool, and node's uncaught exception capture collecting what is not postgres.js' write after a
 * close (see `isPgWriteAfterClose`) for the duration of the suite.
 */
export function useTerminatedProjector(
  name: string,
  ref: { tenant: string; category: string; id: string },
  events: number,
): TerminatedProjectorBench {
  const bench = { otherUncaught: [] as unknown[] } as TerminatedProjectorBench
  before(async () => {
    process.setUncaughtExceptionCaptureCallback((e) => {
      if (!isPgWriteAfterClose(e)) bench.otherUncaught.push(e)
    })
    bench.db = await createTestDatabase(name)
    bench.projector = bench.db.connect(PROJECTOR_ROLE, 4)
    const writer = new PgEventStore(bench.db.connect(ROLES.intentWriter, 2))
    const f = factoryFor(ref.tenant)
    await writer.append(
      ref,
      Array.from({ length: events }, () => f.intent(ref, 'scaled', {})),
    )
  })
  after(async () => {
    process.setUncaughtExceptionCaptureCallback(null)
    await bench.db?.drop()
  })
  return bench
}
