import { readFileSync } from 'node:fs'
import { natsDriverError } from '@eventplane/bus-nats'
import { EventplaneError, isEventplaneError } from '@eventplane/core'
import type { NatsConnection } from '@nats-io/transport-node'

/**
 * The error a service ends with when the server closed its NATS connection
 * for good (not the service's own stop). Closed for its credentials (its user
 * revoked, or refused on reconnect: NATS's `Authorization Violation`) it is
 * `bus.auth_failed`, exit 4: restarting with the same credentials will not
 * help, the operator must issue new ones. Closed for any other reason it is
 * `bus.unavailable`, exit 3. `what` leads the one-line message; the connection's
 * user (`identity`, `user <name>`, see {@link natsUserName}) and the server's reason follow. The line after
 * `what` is kept in the details (`connection_closed`), for {@link sharedConnectionFailure}.
 */
export async function connectionClosedError(
  nc: NatsConnection,
  what: string,
  options: { cause?: unknown; identity?: string | undefined } = {},
): Promise<EventplaneError> {
  const why = nc.isClosed() ? await nc.closed() : undefined
  const reason = why instanceof Error ? ` (${why.message})` : ''
  const refused = why instanceof Error && natsDriverError(why)?.code === 'bus.auth_failed'
  const who = options.identity === undefined ? '' : ` (${options.identity})`
  const closed = `the NATS connection${who} was closed${reason}${refused ? ': its credentials were refused or revoked' : ''}`
  const details = { connection_closed: closed }
  return refused
    ? new EventplaneError('bus.auth_failed', `${what}: ${closed}`, { cause: why, details })
    : new EventplaneError('bus.unavailable', `${what}: ${closed}`, { cause: options.cause ?? why, details })
}

/**
 * What a command whose wait on `nc` ended (`cause`: its failure, or none when a feed just ended) reports: on `nc`
 * closed for good, {@link connectionClosedError} (why the server closed it, `what` leading, `cause` kept); else
 * `cause` itself. `tail`, `subscribe` and `publish` end so when their tenant is revoked, not as if the feed ended
 * or NATS were only unavailable.
 */
export async function closedFailure(
  nc: NatsConnection,
  what: string,
  identity: string | undefined,
  cause?: unknown,
): Promise<unknown> {
  return nc.isClosed() ? connectionClosedError(nc, what, { cause, identity }) : cause
}

/**
 * What a part (relay, projection, controller) that failed with `err` ends with: a `bus.unavailable` failure on
 * `nc` closed for good becomes {@link connectionClosedError} (why the server closed it, `what` leading);
 * anything else is `err` itself.
 */
export async function partFailure(
  nc: NatsConnection,
  what: string,
  err: unknown,
  identity?: string | undefined,
): Promise<unknown> {
  return isEventplaneError(err, 'bus.unavailable') ? closedFailure(nc, what, identity, err) : err
}

/**
 * The failure of a process of several parts on one NATS user (`run`: one connection for every runner; `up`:
 * the gateway, relay and runners on connections of the same user) when the first to fail did so because the
 * server closed its connection ({@link connectionClosedError}): the others lost theirs with it, and which
 * noticed first is chance. One line, the same whichever it was: `command` leading, then the connection, its
 * user and why it was closed, then every part that was stopped, and (closed while they started, see
 * startingParts) those `notStarted`. Any other failure is returned as it is.
 */
export function sharedConnectionFailure(
  failure: unknown,
  command: string,
  parts: readonly string[],
  notStarted: readonly string[] = [],
): unknown {
  if (!isEventplaneError(failure) || typeof failure.details.connection_closed !== 'string') return failure
  const never = notStarted.length > 0 ? `; not started: ${notStarted.join(', ')}` : ''
  const message = `${command}: ${failure.details.connection_closed}; stopped: ${parts.join(', ')}${never}`
  return new EventplaneError(failure.code, message, { cause: failure, details: { ...failure.details } })
}

/**
 * The name of the NATS user a process connects as: the user JWT's `name` in the creds file (only the JWT's claims
 * are read, never the seed; a tenant's user is named by its tenant), else the configured user name; undefined
 * without either (an open server) or when the creds cannot be read.
 */
export function natsUserName(config: {
  natsUser?: string | undefined
  natsCreds?: string | undefined
}): string | undefined {
  if (config.natsCreds !== undefined) {
    try {
      const jwt = /-----BEGIN NATS USER JWT-----\s+(\S+)/.exec(readFileSync(config.natsCreds, 'utf8'))?.[1]
      const claims = JSON.parse(Buffer.from(jwt?.split('.')[1] ?? '', 'base64url').toString('utf8')) as {
        name?: unknown
      }
      if (typeof claims.name === 'string' && claims.name !== '') return claims.name
    } catch {
      // No name to give: the line goes without it.
    }
    return undefined
  }
  return config.natsUser
}
