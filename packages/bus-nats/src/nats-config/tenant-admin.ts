import { readFileSync } from 'node:fs'
import { type ConnectionOptions, type NatsConnection, connect } from '@nats-io/transport-node'
import { credsAuthenticator } from '../nkeys.ts'
import { type AuthDir, serviceCredsFile } from './auth-dir.ts'

/** The two connections tenant administration needs: the system account (JWT pushes) and the log account (consumers). */
export interface TenantAdmin {
  system: NatsConnection
  operator: NatsConnection
  close(): Promise<void>
}

/**
 * Connects as one of the auth dir's users (`system`: account JWT pushes; `operator`), by its creds file. Async,
 * so that a creds file that cannot be read is a rejection too, never a throw before the promise.
 */
export async function connectAuthDirUser(
  auth: AuthDir,
  user: 'system' | 'operator',
  servers: string,
  options: Partial<ConnectionOptions> = {},
): Promise<NatsConnection> {
  return connect({
    servers,
    name: `eventplane-tenant-admin:${user}`,
    authenticator: credsAuthenticator(readFileSync(serviceCredsFile(auth.dir, user))),
    ...options,
  })
}

/** Connects as the auth dir's `system` and `operator` users (their creds files). */
export async function connectTenantAdmin(
  auth: AuthDir,
  servers: string,
  options: Partial<ConnectionOptions> = {},
): Promise<TenantAdmin> {
  const as = (user: 'system' | 'operator') => connectAuthDirUser(auth, user, servers, options)
  const system = await as('system')
  const operator = await as('operator').catch(async (e: unknown) => {
    await system.close()
    throw e
  })
  return {
    system,
    operator,
    async close() {
      await Promise.allSettled([system.close(), operator.close()])
    },
  }
}
