import type { NatsConnection } from '@nats-io/transport-node'
import { type AuthDir, serviceCredsFile } from '../nats-config/auth-dir.ts'
import type { ServiceUser } from '../nats-config/permissions.ts'
import { credsKeyIssued, revokeLogUserKeys } from '../nats-config/rotate.ts'

/**
 * Revokes `users`' current keys as of now, or as of their creds' `iat` when later (a clock behind the one that
 * issued them), without new creds (what a leak would need, minus the rotation): merged into the auth dir's
 * revocation list and pushed as the log account JWT, as `evtctl creds rotate` does. The server
 * closes their live connections and refuses their creds from then on; the other service users keep theirs, and
 * users revoked by an earlier call stay revoked.
 */
export async function revokeServiceUsers(
  auth: AuthDir,
  system: NatsConnection,
  users: readonly ServiceUser[],
): Promise<void> {
  const keys = []
  for (const user of users) keys.push({ ...(await credsKeyIssued(serviceCredsFile(auth.dir, user))), user })
  await revokeLogUserKeys(auth, system, keys)
}
