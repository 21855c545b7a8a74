import { afterDeadlineAndIo, natsDriverError } from '@eventplane/bus-nats'
import { EventplaneError, Unavailable } from '@eventplane/core'
import {
  type Authenticator,
  type ConnectionOptions,
  type NatsConnection,
  type ReconnectToServerHandler,
  connect,
} from '@nats-io/transport-node'

/**
 * Seconds a server that answered (its INFO came) has, after the seconds to answer, to accept or refuse the
 * login: nats-server looks up an account its resolver does not have before it refuses (5 s measured, 2.9.10),
 * which a single 5 s connect timeout raced and lost, and the line then said no server had answered.
 */
export const LOGIN_VERDICT_S = 10

/** A refusal that came this long after the server's INFO followed a look-up of the credentials' account. */
const LOOKED_UP_MS = 1000

/** What a slow refusal, or none at all, most likely means, and where to look. */
const LIKELY_CAUSES =
  "likely creds of another deployment (another operator's), or of an account this server's resolver does not " +
  'have: check that the creds come from the nats-setup auth dir of this server (the operator it trusts)'

/**
 * When the server of a connection being made last answered (its INFO line), so that a refused login tells a
 * refusal after an account look-up (creds this server does not know) from one at once (a wrong password, a
 * revoked user). The one owner of the look-up refusal's line: one-shot commands (connectForCommand) and the
 * services' connections (Session.serviceNats) give the same; the services' end at that first refusal
 * (firstConnectRetries).
 */
export class LoginWatch {
  #answeredAt: number | undefined
  /** performance.now() when firstConnectRetries' handler let the last dial go. */
  #dialedAt: number | undefined
  /** What firstConnectRetries' handler threw to end the connect. */
  #refused: EventplaneError | undefined

  /** performance.now() when the server last answered a dial (undefined: none did yet). */
  get answeredAt(): number | undefined {
    return this.#answeredAt
  }

  /**
   * The connection's authenticators: `own` (natsAuth's, if any) and one that notes the server's answer. nats.js
   * signs the CONNECT once the server's INFO is read, on every dial: that call is the server's answer.
   */
  authenticator(own: ConnectionOptions['authenticator']): Authenticator[] {
    const answered: Authenticator = () => {
      this.#answeredAt = performance.now()
      return undefined
    }
    return [...(own === undefined ? [] : Array.isArray(own) ? own : [own]), answered]
  }

  /**
   * The `reconnectToServer` of a connection that waits for its server (`waitOnFirstConnect`, dials `timeoutMs`
   * each, see the connection's `timeout`): ends its first connect at the first refusal after a look-up, which
   * nats.js would dial again (it gives up on the second refusal in a row: a look-up each, 5 s). nats.js calls it
   * before each dial and rejects the connect with what it throws (as the cause of the error it rejects with; see
   * lookedUpRefusal). A dial the server answered that ended LOOKED_UP_MS or more after the answer and before its
   * timeout was refused: nats.js ends a dial early only on an authorization -ERR (measured on nats.js 3.4 with a
   * fake server: another -ERR, or the socket closed, waits for the timeout), and nats-server's refusal after a
   * look-up is 'Authorization Violation'. Any other failed dial (nothing listening yet, a timeout) is dialed
   * again as before, and once connected (a reconnect) the handler leaves nats.js's choice as it is.
   */
  firstConnectRetries(url: string, timeoutMs: number): ReconnectToServerHandler {
    return (pool) => {
      const now = performance.now()
      const [answeredAt, dialedAt] = [this.#answeredAt, this.#dialedAt]
      this.#answeredAt = undefined
      this.#dialedAt = now
      if (pool.some((server) => server.didConnect)) return null
      if (answeredAt === undefined || dialedAt === undefined) return null
      if (now - answeredAt < LOOKED_UP_MS || now - dialedAt >= timeoutMs) return null
      this.#refused = lookedUpLine(url, 'Authorization Violation', now - answeredAt)
      throw this.#refused
    }
  }

  /**
   * `bus.auth_failed` naming `LIKELY_CAUSES` when `e` is a refused login that came LOOKED_UP_MS or more after
   * the server's answer (its resolver looked for the creds' account and found none), or the connect that
   * firstConnectRetries ended at such a refusal; else undefined.
   */
  lookedUpRefusal(e: unknown, url: string): EventplaneError | undefined {
    const refused = this.#refused
    if (refused !== undefined && (e === refused || (e instanceof Error && e.cause === refused))) return refused
    const since = this.#answeredAt === undefined ? undefined : performance.now() - this.#answeredAt
    if (since === undefined || since < LOOKED_UP_MS || natsDriverError(e)?.code !== 'bus.auth_failed') return undefined
    return lookedUpLine(url, firstLine(e), since, e)
  }
}

function lookedUpLine(url: string, refusal: string, sinceMs: number, cause?: unknown): EventplaneError {
  return new EventplaneError(
    'bus.auth_failed',
    `NATS at ${url} refused the credentials (${refusal}) after ${seconds(sinceMs)} s, the time its ` +
      `resolver takes to look for an account it does not have: ${LIKELY_CAUSES}`,
    cause === undefined ? {} : { cause },
  )
}

/**
 * One NATS connection for a command (no reconnect), `url` (redacted) naming the server in its failures. Tells
 * apart what a single timeout hid: no server answered within `answerS` (nothing listening that speaks NATS: no
 * INFO line), `bus.unavailable`; a server answered and refused the login, `bus.auth_failed` (as at once
 * for a bad password, and after `LIKELY_CAUSES` when the refusal took a look-up, see LoginWatch); a server
 * answered and gave no verdict within `verdictS` more, `bus.unavailable` naming the likely causes. Any other
 * failure is `bus.unavailable` with nats.js's reason; `bus.forbidden` passes as it is.
 */
export async function connectForCommand(
  options: ConnectionOptions,
  url: string,
  answerS: number,
  verdictS: number = LOGIN_VERDICT_S,
): Promise<NatsConnection> {
  const dialed = performance.now()
  const login = new LoginWatch()
  const connecting = connect({
    ...options,
    timeout: (answerS + verdictS) * 1000,
    authenticator: login.authenticator(options.authenticator),
  })
  let cancelSilent: (() => void) | undefined
  // Judged after the socket reads of the turn the deadline passes in: an INFO already there counts.
  const silent = new Promise<'silent'>((resolve) => {
    cancelSilent = afterDeadlineAndIo(answerS * 1000, () => login.answeredAt === undefined && resolve('silent'))
  })
  try {
    const first = await Promise.race([connecting, silent])
    if (first !== 'silent') return first
    // Given up: should it still connect, close it.
    connecting.then(
      (nc) => nc.close(),
      () => {},
    )
    throw cannotConnect(url, `no NATS server answered within ${answerS} s: is a NATS server listening there?`)
  } catch (e) {
    if (e instanceof EventplaneError) throw e
    const typed = natsDriverError(e)
    const lookedUp = login.lookedUpRefusal(e, url)
    if (lookedUp !== undefined) throw lookedUp
    if (typed?.code === 'bus.auth_failed' || typed?.code === 'bus.forbidden') throw typed
    if (typed?.code === 'bus.timeout')
      throw cannotConnect(
        url,
        login.answeredAt === undefined
          ? `no NATS server answered within ${seconds(performance.now() - dialed)} s: is a NATS server listening there?`
          : `a NATS server answered but did not accept the login within ${seconds(performance.now() - dialed)} s: ${LIKELY_CAUSES}`,
        e,
      )
    throw cannotConnect(url, (e as Error).message, e)
  } finally {
    cancelSilent?.()
  }
}

function cannotConnect(url: string, why: string, cause?: unknown): Unavailable {
  return new Unavailable('bus.unavailable', `cannot connect to NATS at ${url}: ${why}`, cause ? { cause } : {})
}

const seconds = (ms: number): string => (ms / 1000).toFixed(1)

const firstLine = (e: unknown): string => (e instanceof Error ? e.message : String(e)).split('\n')[0] ?? 'error'
