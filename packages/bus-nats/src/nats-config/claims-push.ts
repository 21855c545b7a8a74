import { EventplaneError, Unavailable } from '@eventplane/core'
import { type NatsConnection, RequestError } from '@nats-io/transport-node'

/** Where a full account resolver takes account JWTs (nats-server `accountClaimsReqSubj`). */
export const CLAIMS_UPDATE_SUBJECT = '$SYS.REQ.CLAIMS.UPDATE'

interface ClaimsReply {
  data?: { account?: string; code?: number; message?: string }
  error?: { account?: string; code?: number; description?: string }
}

/**
 * Pushes one account JWT to the server's full resolver as the system
 * account's user. The server applies it at once (new imports, revocations,
 * limits: a revocation closes the account's live connections), stores it in
 * its resolver directory and passes it on to the other servers of a cluster.
 * Throws `bus.bad_request` when the server refuses the JWT, `bus.unavailable`
 * when no resolver answers. nats-server 2.9 answers a JWT signed by a key it
 * does not trust with success ("jwt updated"): it stores it without applying
 * it, so a success does not prove the signer is trusted (see
 * `rotateOperatorSigningKey`'s trust check).
 */
export async function pushAccountJwt(system: NatsConnection, jwt: string, timeoutMs = 5000): Promise<void> {
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
}
