export {
  RESERVED_TENANT_NAMES,
  SERVICE_USERS,
  checkTenantConsumers,
  defaultConsumerNames,
  servicePermissions,
  tenantConsumerSubjects,
  tenantPermissions,
  tenantSubmitSubjects,
} from './permissions.ts'
export type { ServiceUser, UserPermissions } from './permissions.ts'
export {
  DEFAULT_TENANT_ACCOUNT_LIMITS,
  JETSTREAM_SHADOW_SUBJECT,
  LOG_ACCOUNT,
  SYSTEM_ACCOUNT,
  SYSTEM_USER,
  jwtPermissions,
  logAccountExports,
  userCreds,
} from './claims.ts'
export type { TenantAccountLimits } from './claims.ts'
export {
  initAuthDir,
  loadAuthDir,
  serviceCredsFile,
  tenantCredsFile,
  writeAccountJwt,
  writeSecretFile,
} from './auth-dir.ts'
export type { AuthDir, AuthDirUser } from './auth-dir.ts'
export { DEFAULT_MAX_PAYLOAD, accountsConfig, generateNatsConfig } from './server-config.ts'
export type { NatsAccountsConfig, NatsServerConfigOptions } from './server-config.ts'
export { CLAIMS_UPDATE_SUBJECT, pushAccountJwt } from './claims-push.ts'
export { accountConnzSubject, accountzSubject, appliedAccountJwt } from './claims-confirm.ts'
export { addTenant, issueTenantUser, listTenants, revokeTenant, seedPath } from './tenants.ts'
export type { AddTenantOptions, AddedTenant, TenantRecord } from './tenants.ts'
export { connectAuthDirUser, connectTenantAdmin } from './tenant-admin.ts'
export type { TenantAdmin } from './tenant-admin.ts'
export { revokeStagedTenantKeys, rotateTenantUser } from './tenant-rotate.ts'
export type { RotateTenantOptions, RotatedTenant } from './tenant-rotate.ts'
export {
  checkAuthDirUser,
  checkServiceUser,
  credsUserKey,
  listAuthDirUsers,
  revokeLogUserKeys,
  revokeStagedKeys,
  rotateServiceUser,
} from './rotate.ts'
export type { AuthDirUserKeys, LogUserKey, RotateServiceUserOptions, RotatedUser } from './rotate.ts'
export { revokeStagedSystemKeys, rotateSystemUser } from './system-rotate.ts'
export type { ConnectSystemUser } from './system-rotate.ts'
export { jwtRevocations, readRevocations, revocationsFile } from './revocations.ts'
export type { AccountRevocations, RevokedKey, RevokingAccount, StagedKey } from './revocations.ts'
export { rotateSigningKey } from './signing-rotate.ts'
export { rotateOperatorSigningKey } from './operator-rotate.ts'
export type { OperatorRotationStep } from './operator-rotate.ts'
export type { RotatedSigningKey, SigningTarget } from './signing-rotate.ts'
export { readSigningKeys, signingPushedFile, signingSeedFile } from './signing-keys.ts'
export type { SigningKeys, SigningOwner } from './signing-keys.ts'
export { natsSetupMain } from './setup-cli.ts'
export { readSeedFile, requireSeedFile, seedOrCreate } from './seed-file.ts'
export type { SeedRole } from './seed-file.ts'
export { bringIdentitySeedsOnline, identitySeedsLeftOnHost, moveIdentitySeedsOffline } from './identity-move.ts'
export type { MovedSeed, SeedsLeftOnHost } from './identity-move.ts'
export { OFFLINE_RECORD, readOfflineSeeds } from './offline-key.ts'
export type { OfflineSeed, OfflineSeeds } from './offline-key.ts'
export { authDirLockNotice, authDirLockPath, withAuthDirLock } from './auth-lock.ts'
export type { AuthDirLockBusy, AuthDirLockOptions } from './auth-lock.ts'
