import { EventplaneError, Unavailable } from '@eventplane/core'
import { type NatsConnection, RequestError } from '@nats-io/transport-node'
import { decodeJwt } from '../nkeys.ts'
import { natsFailure } from '../nats-errors.ts'
import { appliedAccountJwt, jwtNotApplied } from './claims-confirm.ts'

/** Where a full account resolver takes account JWTs (nats-server `accountClaimsReqSubj`). */
export const CLAIMS_UPDATE_SUBJECT = '$SYS.REQ.CLAIMS.UPDATE'

/**
 * Where each full resolver answers with the account JWT it stores for `account` (nats-server
 * `accLookupReqSubj`); a resolver that stores none does not answer.
 */
export const claimsLookupSubject = (account: string): string => `$SYS.REQ.ACCOUNT.${account}.CLAIMS.LOOKUP`

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

/** How long {@link heldIssuedAt} waits: for a first answer, and for one more after each. */
export interface LookupWait {
  /** For the first answer (none: no server stores a JWT of the account). Default 2,000 ms. */
  firstMs: number
  /** For one more answer after each (every server of a cluster answers with its own). Default 250 ms. */
  moreMs: number
}

const LOOKUP_WAIT: LookupWait = { firstMs: 2000, moreMs: 250 }

/**
 * The latest `iat` of the JWTs of `account` that the full resolvers reached through `system` store, asked as the
 * system account's user (`$SYS.REQ.ACCOUNT.<account>.CLAIMS.LOOKUP`: each server of a cluster answers with the JWT
 * it stores, one that stores none does not answer); undefined when none answers within `wait.firstMs` (an account
 * no server knows). An answer that is not a JWT of `account` whose signature verifies is passed over. What a
 * tenant's account JWT is issued after when the auth dir does not hold the last one it issued (`issuedAfterLast`,
 * tenants.ts): measured on nats-server 2.9.10, a cluster of two answers twice, an unknown account not at all.
 * `bus.unavailable` when no resolver listens (not a full resolver), `bus.forbidden` when the system user may not ask.
 */
export async function heldIssuedAt(
  system: NatsConnection,
  account: string,
  wait: LookupWait = LOOKUP_WAIT,
): Promise<number | undefined> {
  let latest: number | undefined
  try {
    const answers = await system.requestMany(claimsLookupSubject(account), '', {
      strategy: 'stall',
      maxWait: wait.firstMs,
      stall: wait.moreMs,
    })
    for await (const m of answers) {
      const iat = issuedAtFor(m.string(), account)
      if (iat !== undefined && (latest === undefined || iat > latest)) latest = iat
    }
  } catch (e) {
    const failure = natsFailure(e, `look up the JWT the servers store for account ${account}`)
    if (failure.code !== 'bus.forbidden') throw failure
    throw new EventplaneError('bus.forbidden', `${failure.message}; re-run nats-setup to re-issue the system creds`, {
      cause: e,
    })
  }
  return latest
}

function issuedAtFor(jwt: string, account: string): number | undefined {
  try {
    const claims = decodeJwt(jwt.trim())
    return claims.sub === account ? claims.iat : undefined
  } catch {
    return undefined
  }
}
