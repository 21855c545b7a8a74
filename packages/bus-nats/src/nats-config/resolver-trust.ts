import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { EventplaneError } from '@eventplane/core'
import { decodeJwt } from '../nkeys.ts'
import type { AuthDir } from './auth-dir.ts'
import { LOG_ACCOUNT, SYSTEM_ACCOUNT } from './claims.ts'
import { jwtSigningKeys } from './revocations.ts'
import { listTenants } from './tenants.ts'

/** The keys whose account JWTs a server configured with `operatorJwt` applies: the operator's and its signing keys. */
export function trustedIssuers(operatorJwt: string): string[] {
  return [decodeJwt(operatorJwt).sub, ...jwtSigningKeys(operatorJwt)]
}

/** Whether `jwt` is an account JWT of `account` whose signature verifies, signed by one of `trusted`. */
function appliesAs(jwt: string, account: string, trusted: readonly string[]): boolean {
  try {
    const claims = decodeJwt(jwt)
    return claims.sub === account && trusted.includes(claims.iss)
  } catch {
    return false
  }
}

/**
 * The accounts of `auth` (the system and log accounts, each active tenant)
 * whose JWT a full resolver stores in `resolverDir` (`<account>.jwt`) that a
 * server configured with the auth dir's `operator.jwt` would not apply: not
 * signed by the operator or a signing key it lists, or not verifying.
 * nats-server loads the stored JWT at its next start (over an older
 * preloaded one), then refuses the account's users. Revoked tenants are
 * left out (refused either way), as are accounts the auth dir does not know.
 */
export function untrustedStoredAccounts(auth: AuthDir, resolverDir: string): string[] {
  const trusted = trustedIssuers(auth.operatorJwt)
  const accounts: [string, string][] = [
    [SYSTEM_ACCOUNT, auth.system.getPublicKey()],
    [LOG_ACCOUNT, auth.log.getPublicKey()],
    ...listTenants(auth)
      .filter((r) => r.status === 'active')
      .map((r): [string, string] => [r.tenant, r.account]),
  ]
  return accounts
    .filter(([, account]) => {
      const file = join(resolverDir, `${account}.jwt`)
      return existsSync(file) && !appliesAs(readFileSync(file, 'utf8').trim(), account, trusted)
    })
    .map(([name]) => name)
}

/** `bus.config` naming the accounts {@link untrustedStoredAccounts} found, and how to push each again. */
export function untrustedStoredError(resolverDir: string, names: readonly string[]): EventplaneError {
  return new EventplaneError(
    'bus.config',
    `${resolverDir} stores account JWTs of ${names.join(', ')} that operator.jwt's keys did not sign: nats-server refuses these accounts after its next start; push each again before it restarts (evtctl tenant add <tenant>, evtctl creds revoke-old for ${LOG_ACCOUNT}, evtctl creds revoke-old system for ${SYSTEM_ACCOUNT})`,
    { details: { accounts: names } },
  )
}

/**
 * The auth dir's account JWT files `nats-setup` preloads into the server config (`accounts/SYS.jwt`,
 * `accounts/EVENTPLANE.jwt`) that a server configured with its `operator.jwt` would not apply: not of the
 * account (another subject), not verifying, or not signed by the operator or a signing key it lists. nats-server
 * starts with such a preload and refuses every user of its account (the system user: no JWT push; the log
 * account: relay, gateway, controller), tested.
 */
export function untrustedPreloads(auth: AuthDir): string[] {
  const trusted = trustedIssuers(auth.operatorJwt)
  const preloads: [string, string, string][] = [
    [SYSTEM_ACCOUNT, auth.system.getPublicKey(), auth.systemAccountJwt],
    [LOG_ACCOUNT, auth.log.getPublicKey(), auth.logAccountJwt],
  ]
  return preloads
    .filter(([, account, jwt]) => !appliesAs(jwt, account, trusted))
    .map(([name]) => join(auth.dir, 'accounts', `${name}.jwt`))
}

/** `bus.config` naming the files {@link untrustedPreloads} found, and how to have nats-setup write them anew. */
export function untrustedPreloadError(files: readonly string[]): EventplaneError {
  return new EventplaneError(
    'bus.config',
    `${files.join(', ')} ${files.length === 1 ? 'is' : 'are'} not an account JWT signed by operator.jwt's keys: nats-server would start with it preloaded and refuse every user of its account; no config written. Remove it and run nats-setup again (it writes it anew, signed by the operator's signing key, with every revocation the auth dir keeps), or restore it from a backup of the auth dir`,
    { details: { files } },
  )
}
