import { ROLES, type RoleName } from '@eventplane/store-pg'

/**
 * The cross-tenant role projections run as (store-pg `ROLES.projector`):
 * reads every tenant's events, writes projection checkpoints, state and the
 * tables in schema `eventplane_views`.
 */
export const PROJECTOR_ROLE: RoleName = ROLES.projector
