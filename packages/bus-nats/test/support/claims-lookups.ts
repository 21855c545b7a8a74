/**
 * What the servers are asked for the account JWTs they store (`$SYS.REQ.ACCOUNT.<account>.CLAIMS.LOOKUP`, what
 * `heldIssuedAt` sends), seen on the wire by a user of the system account that may subscribe to it (the auth dir's
 * `system` user may only publish there).
 */
import { type NatsConnection, connect } from '@nats-io/transport-node'
import { credsAuthenticator } from '../../src/nkeys.ts'
import { type AuthDir, SYSTEM_ACCOUNT, userCreds } from '../../src/nats-config/index.ts'
import { claimsLookupSubject } from '../../src/nats-config/claims-push.ts'
import { userSigner } from '../../src/nats-config/signing-keys.ts'

export interface ClaimsLookups {
  /** How many lookups of `account` the servers were asked so far (each one a client sent before this call). */
  of(account: string): Promise<number>
  close(): Promise<void>
}

/** Subscribes to every account's lookup subject through `url`, as a new user of `auth`'s system account. */
export async function watchClaimsLookups(auth: AuthDir, url: string): Promise<ClaimsLookups> {
  const creds = await userCreds(
    'lookup-watcher',
    auth.system,
    {},
    userSigner(auth.dir, { account: SYSTEM_ACCOUNT }, auth.system),
  )
  const nc: NatsConnection = await connect({ servers: url, authenticator: credsAuthenticator(creds) })
  const asked: string[] = []
  nc.subscribe(claimsLookupSubject('*'), {
    callback: (_e, m) => {
      asked.push(m.subject)
    },
  })
  // Subscribed once the server answered: every lookup sent after this returns is seen.
  await nc.flush()
  return {
    async of(account) {
      // The server put each lookup a client sent before now on this connection before this ping's pong.
      await nc.flush()
      return asked.filter((s) => s === claimsLookupSubject(account)).length
    },
    close: () => nc.close(),
  }
}
