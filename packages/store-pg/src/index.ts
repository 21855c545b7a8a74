export { PgEventStore } from './event-store.ts'
export type {
  AppendOptions,
  AppendResult,
  AppendedEvent,
  EventStoreOptions,
  ExpectedVersion,
  ListStreamsOptions,
  ReadAllOptions,
  ReadCategoryOptions,
  ReadStreamOptions,
  StreamSummary,
} from './event-store.ts'
export { AppendNotifier, EVENTS_CHANNEL, NOTIFY_TRACE } from './append-notifier.ts'
export type { EventTextRow, HorizonRule } from './sql/read-all.ts'
export { withTenant } from './with-tenant.ts'
export { streamLog } from './stream-log.ts'
export type { StreamLogOptions } from './stream-log.ts'
export { MIGRATIONS_DIR, loadMigrations, migrate } from './migrate.ts'
export type { MigrateResult, Migration } from './migrate.ts'
export type { JSONValue, PendingQuery, ReservedSql, Row, Sql, TransactionSql } from './driver.ts'
export { DEFAULT_DATABASE_URL, ROLES, connectPg, redactUrl, roleUrl } from './connect.ts'
export type { ConnectOptions, RoleName } from './connect.ts'
export { pgConnectError, pgConnectTimeout, pgDriverError, typedBegin } from './pg-errors.ts'
export { PG_WRITE_AFTER_CLOSE_WARNING, guardPgWriteAfterClose, isPgWriteAfterClose } from './pg-write-after-close.ts'
export type { PgWriteAfterCloseGuardOptions } from './pg-write-after-close.ts'
export type { PgConnectTarget } from './pg-errors.ts'
export { RelayLease, loadRelayCheckpoint, loadRelayRecord, logHoldsEvent } from './relay-lease.ts'
export type { LeaseRelease } from './relay-lease.ts'
export type { RelayRecord } from './relay-lease.ts'
export type { LogEventRef } from './sql/log-event-at.ts'
export {
  VIEWS_SCHEMA,
  countEventsAfter,
  countEventsBetween,
  deleteStaleProjectionStates,
  dropStaleProjectionShadows,
  ensureProjectionShadow,
  moveShadowTables,
  shadowTables,
  useProjectionSchema,
  ensureProjectionCheckpoint,
  loadProjectionStates,
  lockProjectionCheckpoint,
  lockProjectionRebuild,
  projectionRebuildProgress,
  readProjectionCheckpoint,
  readProjectionStates,
  saveProjectionStates,
  scanProjectionStates,
  startProjectionRebuild,
  swapProjectionRebuild,
  writeProjectionCheckpoint,
  writeProjectionRebuild,
} from './projections.ts'
export type { EventCountFilter } from './sql/count-events-between.ts'
export type { ProjectionCheckpoint } from './sql/projection-checkpoint-rows.ts'
export type { ProjectionRebuild } from './sql/projection-rebuild-rows.ts'
export type { ProjectionStateRow } from './sql/projection-states-load.ts'
export type { ProjectionStateText } from './sql/projection-states-scan.ts'
export {
  logStatus,
  openTransactions,
  projectionStatuses,
  relayStatuses,
  stuckTransactions,
  terminateStuckTransactions,
  transactionsHoldingLog,
} from './status.ts'
export type {
  LogStatus,
  OpenTransaction,
  ProjectionStatus,
  RelayStatus,
  TerminatedTransaction,
} from './status.ts'
export { causationInChain } from './sql/causation-in-chain.ts'
export { REDACTED_ACTOR, exportEvents, importEvents, parseExportLine } from './backup.ts'
export type { ExportSelector, ImportResult } from './backup.ts'
export {
  GENESIS,
  canonicalInstant,
  canonicalText,
  chainLink,
  jsonbText,
} from './chain/canonical.ts'
export type { ChainFields } from './chain/canonical.ts'
export { ChainVerifier } from './chain/verifier.ts'
export type { BreakKind, ChainBreak, ChainRow, LogPoint, SavedHead, VerifierOptions } from './chain/verifier.ts'
export { verifyLog } from './chain/verify.ts'
export type { VerifyOptions, VerifyResult } from './chain/verify.ts'
export {
  HEADS_FORMAT,
  checkHeads,
  headsDigest,
  headsMessage,
  headsToFile,
  listChainTenants,
  keyFingerprint,
  readHeads,
  signHeads,
} from './chain/heads.ts'
export type { ChainHeads, HeadsFile, StreamHead } from './chain/heads.ts'
export { headsConflicts } from './chain/heads-continuity.ts'
export type { HeadsConflict } from './chain/heads-continuity.ts'
export { checkImportChain, confirmImportedHashes } from './chain/import-check.ts'
export type { ImportChainResult } from './chain/import-check.ts'
