import { natsDriverError } from '@eventplane/bus-nats'
import { EventplaneError, isEventplaneError } from '@eventplane/core'
import type { NatsConnection } from '@nats-io/transport-node'

/**
 * The error a service ends with when the server closed its NATS connection
 * for good (not the service's own stop). Closed for its credentials (its user
 * revoked, or refused on reconnect: NATS's `Authorization Violation`) it is
 * `bus.auth_failed`, exit 4: restarting with the same credentials will not
 * help, the operator must issue new ones. Closed for any other reason it is
 * `bus.unavailable`, exit 3. `what` leads the one-line message; the server's
 * reason ends it.
 */
export async function connectionClosedError(
  nc: NatsConnection,
  what: string,
  cause?: unknown,
): Promise<EventplaneError> {
  const why = nc.isClosed() ? await nc.closed() : undefined
  const reason = why instanceof Error ? ` (${why.message})` : ''
  const refused = why instanceof Error && natsDriverError(why)?.code === 'bus.auth_failed'
  const message = `${what}: the NATS connection was closed${reason}`
  return refused
    ? new EventplaneError('bus.auth_failed', `${message}: its credentials were refused or revoked`, { cause: why })
    : new EventplaneError('bus.unavailable', message, { cause: cause ?? why })
}

/**
 * What a part (relay, projection, controller) that failed with `err` ends with: a `bus.unavailable` failure on
 * `nc` closed for good becomes {@link connectionClosedError} (why the server closed it, `what` leading);
 * anything else is `err` itself.
 */
export async function partFailure(nc: NatsConnection, what: string, err: unknown): Promise<unknown> {
  return nc.isClosed() && isEventplaneError(err, 'bus.unavailable') ? connectionClosedError(nc, what, err) : err
}
