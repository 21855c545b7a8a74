import { EventplaneError } from '@eventplane/core'
import type { NatsConnection } from '@nats-io/transport-node'
import { natsFailure } from '../nats-errors.ts'

/** One server's account details (`Accountz` with an account): what it applies, only for an account it loaded. */
export const accountzSubject = (server: string): string => `$SYS.REQ.SERVER.${server}.ACCOUNTZ`

/**
 * An account's connections (`Connz` of it, every server). Asked about an account it has not loaded, a
 * server loads it from its resolver, which only works when the JWT stored there verifies.
 */
export const accountConnzSubject = (account: string): string => `$SYS.REQ.ACCOUNT.${account}.CONNZ`

interface AccountzReply {
  data?: { account_detail?: { jwt?: string } }
  error?: { code?: number; description?: string }
}

async function ask<T>(system: NatsConnection, subject: string, body: object, account: string, ms: number): Promise<T> {
  try {
    return (await system.request(subject, JSON.stringify(body), { timeout: ms })).json<T>()
  } catch (e) {
    const failure = natsFailure(e, `read back account ${account}'s JWT`)
    if (failure.code !== 'bus.forbidden') throw failure
    // System creds issued before this release may only push: nats-setup re-issues them with today's grants.
    throw new EventplaneError('bus.forbidden', `${failure.message}; re-run nats-setup to re-issue the system creds`, {
      cause: e,
    })
  }
}

/** The JWT `server` applies for `account`; undefined when it has not loaded the account. */
async function loadedJwt(system: NatsConnection, server: string, account: string, ms: number) {
  const reply = await ask<AccountzReply>(system, accountzSubject(server), { account }, account, ms)
  // Its only error: "Account … does not exist" (not loaded); the details of a loaded one carry its JWT.
  return reply.error === undefined ? (reply.data?.account_detail?.jwt ?? '') : undefined
}

/**
 * The account JWT `server` (the one that answered a push) applies for
 * `account` now, read back through the system account: its account details,
 * which only an account it has loaded has. One request for a loaded account;
 * for another, the account's connections are asked for first, which has the
 * server load it from its resolver (a JWT stored there that does not verify
 * leaves it unloaded), then its details again. Undefined when the account is
 * still not loaded: the server refuses it until it stores a JWT it trusts.
 */
export async function appliedAccountJwt(
  system: NatsConnection,
  server: string,
  account: string,
  timeoutMs: number,
): Promise<string | undefined> {
  const applied = await loadedJwt(system, server, account, timeoutMs)
  if (applied !== undefined) return applied
  await ask(system, accountConnzSubject(account), { limit: 1 }, account, timeoutMs)
  return loadedJwt(system, server, account, timeoutMs)
}

/**
 * `bus.jwt_not_applied`: the server answered a push of `account`'s JWT but does not apply it. `kept`: it
 * applies the JWT it had (`restored`: pushed back, so its resolver no longer stores the refused one).
 */
export function jwtNotApplied(account: string, kept: boolean, restored: boolean): EventplaneError {
  const now = !kept
    ? 'it refuses the account until it is pushed a JWT it trusts'
    : restored
      ? 'it keeps the JWT it had, pushed back to its resolver'
      : 'it keeps the JWT it had, but its resolver stores the refused one (loaded at its next start)'
  return new EventplaneError(
    'bus.jwt_not_applied',
    `nats-server answered the push of account ${account}'s JWT but did not apply it (not signed by a key it trusts?): ${now}`,
    { details: { account } },
  )
}
