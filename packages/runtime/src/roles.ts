import type { RoleName } from '@eventplane/store-pg'

/**
 * The cross-tenant role projections run as (created by
 * store-pg migrations/0003_projections.sql): reads every tenant's events, writes
 * projection checkpoints, state and the tables in schema `eventplane_views`.
 * Typed as a store-pg `RoleName` so `roleUrl` and test databases accept it.
 */
export const PROJECTOR_ROLE = 'eventplane_projector' as RoleName
