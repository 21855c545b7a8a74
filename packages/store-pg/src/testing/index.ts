export { createTestDatabase, useTestDatabase } from './test-database.ts'
export {
  TEMPLATE_ENV,
  copyTemplateDatabase,
  createTemplateDatabase,
  dropTemplateDatabase,
} from './template-database.ts'
export { perSuite } from './per-suite.ts'
export { CLOSE_POOL_TIMEOUT_S, closePool } from './close-pool.ts'
export type { TestDatabase } from './test-database.ts'
export { eventually, within } from './eventually.ts'
export { RELAY_CHECKPOINT_WRITE, activeRelayCheckpointWrites } from './relay-checkpoint-writes.ts'
export { holdStream } from './hold-stream.ts'
export type { HeldStream } from './hold-stream.ts'
export { holdXid } from './hold-xid.ts'
export { holdXidInPsql } from './psql-xid.ts'
export { terminateLockWaiter } from './terminate-waiter.ts'
export type { PsqlXid } from './psql-xid.ts'
export type { HeldXid } from './hold-xid.ts'
export { holdForeignXid, useForeignXid } from './foreign-xid.ts'
export type { ForeignXid } from './foreign-xid.ts'
export { bulkLoadEvents, countLogEvents, insertRawEvents, rawGapSafeLog, readRawLog, vacuumLog } from './raw-log.ts'
/** The bundled, patched driver itself, for tests and benches that need options `connectPg` does not take. */
export { default as postgres } from 'postgres'
