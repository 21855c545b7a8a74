import { EventplaneError, Unavailable } from '@eventplane/core'
import { type NatsConnection, RequestError } from '@nats-io/transport-node'
import { decodeJwt } from '../nkeys.ts'
import { appliedAccountJwt, jwtNotApplied } from './claims-confirm.ts'

/** Where a full account resolver takes account JWTs (nats-server `accountClaimsReqSubj`). */
export const CLAIMS_UPDATE_SUBJECT = '$SYS.REQ.CLAIMS.UPDATE'

interface ClaimsReply {
  data?: { account?: string; code?: number; message?: string }
  error?: { account?: string; code?: number; description?: string }
  server?: { id?: string }
}

/**
 * Pushes one account JWT to the server's full resolver as the system
 * account's user and confirms that the server applies it. The server
 * applies it at once (new imports, revocations, limits: a revocation closes
 * the account's live connections), stores it in its resolver directory and
 * passes it on to the other servers of a cluster.
 *
 * nats-server 2.9 answers "jwt updated" to a JWT it stores but does not
 * apply (one signed by a key it does not trust), and loads that stored JWT at
 * its next start, which then refuses the account. So the answer is not
 * taken as proof: the JWT the answering server applies is read back
 * ({@link appliedAccountJwt}: one request, three for an account it had not
 * loaded, which this loads) and must be the one pushed. When it is not,
 * the JWT the server applies (if any) is pushed back, so that its resolver
 * stores it again, and this throws `bus.jwt_not_applied` (one line naming
 * the account). Also `bus.bad_request` when the server refuses the JWT,
 * `bus.unavailable` when no resolver answers, `bus.forbidden` when the
 * system creds may not read back (issued before this release: re-run
 * nats-setup). Other servers of a cluster apply it after this returns.
 */
export async function pushAccountJwt(system: NatsConnection, jwt: string, timeoutMs = 5000): Promise<void> {
  const server = await sendAccountJwt(system, jwt, timeoutMs)
  const account = decodeJwt(jwt).sub
  const applied = await appliedAccountJwt(system, server, account, timeoutMs)
  if (applied === jwt) return
  const restored =
    applied !== undefined &&
    (await sendAccountJwt(system, applied, timeoutMs).then(
      () => true,
      () => false,
    ))
  throw jwtNotApplied(account, applied !== undefined, restored)
}

/** Pushes `jwt` without confirming it; the id of the server that answered. */
async function sendAccountJwt(system: NatsConnection, jwt: string, timeoutMs: number): Promise<string> {
  let reply: ClaimsReply
  try {
    reply = (await system.request(CLAIMS_UPDATE_SUBJECT, jwt, { timeout: timeoutMs })).json<ClaimsReply>()
  } catch (e) {
    const hint =
      e instanceof RequestError && e.isNoResponders()
        ? 'no account resolver answers (is nats-server running in operator mode with a full resolver?)'
        : e instanceof Error
          ? e.message
          : String(e)
    throw new Unavailable('bus.unavailable', `could not push the account JWT: ${hint}`, { cause: e })
  }
  if (reply.error !== undefined || reply.data?.code !== 200) {
    const why = reply.error?.description ?? reply.data?.message ?? 'no reason given'
    throw new EventplaneError('bus.bad_request', `nats-server refused the account JWT: ${why}`, {
      details: { account: reply.error?.account ?? reply.data?.account },
    })
  }
  if (reply.server?.id === undefined)
    throw new EventplaneError('bus.bad_request', 'nats-server answered the account JWT push without its server id')
  return reply.server.id
}
