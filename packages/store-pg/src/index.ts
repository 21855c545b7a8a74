export { PgEventStore } from './event-store.ts'
export type {
  AppendOptions,
  AppendResult,
  AppendedEvent,
  EventStoreOptions,
  ExpectedVersion,
  ReadAllOptions,
  ReadStreamOptions,
} from './event-store.ts'
export { withTenant } from './with-tenant.ts'
export { MIGRATIONS_DIR, loadMigrations, migrate } from './migrate.ts'
export type { MigrateResult, Migration } from './migrate.ts'
export { DEFAULT_DATABASE_URL, ROLES, connectPg, redactUrl, roleUrl } from './connect.ts'
export type { ConnectOptions, RoleName } from './connect.ts'
export { mapPgError } from './pg-errors.ts'
export { toRecordedEvent } from './rows.ts'
export type { EventRow } from './rows.ts'
export { logHeadSql } from './sql/log-head.ts'
export { causationInChain } from './sql/causation-in-chain.ts'
export type { LogHeadRow } from './sql/log-head.ts'
export { REDACTED_ACTOR, exportEvents, importEvents } from './backup.ts'
export type { ExportSelector, ImportResult } from './backup.ts'
