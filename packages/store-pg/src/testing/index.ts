export { createTestDatabase } from './test-database.ts'
export type { TestDatabase } from './test-database.ts'
export { eventually } from './eventually.ts'
export { bulkLoadEvents, countLogEvents, insertRawEvents, rawGapSafeLog, readRawLog, vacuumLog } from './raw-log.ts'
