import { readFileSync } from 'node:fs'
import { parseCreds } from '@nats-io/jwt'
import type { NatsConnection } from '@nats-io/transport-node'
import { type AuthDir, serviceCredsFile } from '../nats-config/auth-dir.ts'
import { logAccountJwt } from '../nats-config/claims.ts'
import { pushAccountJwt } from '../nats-config/claims-push.ts'
import type { ServiceUser } from '../nats-config/permissions.ts'

/**
 * Pushes the log account's JWT again with `users`' keys revoked as of now: the server closes
 * their live connections and refuses their creds from then on; the other service users keep theirs.
 */
export async function revokeServiceUsers(
  auth: AuthDir,
  system: NatsConnection,
  users: readonly ServiceUser[],
): Promise<void> {
  const now = Math.floor(Date.now() / 1000)
  const revocations: Record<string, number> = {}
  for (const user of users) revocations[(await parseCreds(readFileSync(serviceCredsFile(auth.dir, user)))).uc.sub] = now
  await pushAccountJwt(system, await logAccountJwt(auth.log, auth.operator, revocations))
}
