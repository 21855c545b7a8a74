import { EventplaneError, Forbidden, Unavailable } from '@eventplane/core'
import { JetStreamApiError } from '@nats-io/jetstream'
import { jserrors } from '@nats-io/jetstream/internal'
import { type Status, errors } from '@nats-io/transport-node'

const firstLine = (e: unknown): string => (e instanceof Error ? e.message : String(e)).split('\n')[0] ?? 'error'

/**
 * What a refused login leaves to do: the server says only "Authorization Violation", the same for a wrong password,
 * a revoked key and a creds file a rotation has replaced since it was copied (operator walk 2026-12-02).
 */
const REFUSED_NEXT =
  'a bad user or password, a revoked key, or a creds file older than the one the auth dir holds now: ' +
  'use the current creds file'

/** What a server without JetStream means: a configuration error, not "retry later". */
export function jetStreamDisabled(where = 'the NATS server', cause?: unknown): EventplaneError {
  return new EventplaneError(
    'bus.config',
    `JetStream is not enabled on ${where}: start nats-server with -js (or a jetstream {} block in its config)`,
    cause === undefined ? {} : { cause },
  )
}

/**
 * The one place NATS failures become eventplane codes, by nats.js error
 * class (never by message text): `bus.forbidden` (a permission violation,
 * also as a request's cause), `bus.auth_failed`, `bus.timeout`,
 * `bus.unavailable` (no responders, connection closed or failing),
 * `bus.config` (no JetStream), `bus.stream_mismatch` (a JetStream API
 * refusal, with its `api_code`), `bus.bad_request` (an argument nats.js
 * refused). Undefined for what is not a NATS failure; typed errors are not
 * NATS failures either. `action` ("publish eventplane.fact.acme.…", "submit
 * to …") names what was being done, for the message.
 */
export function natsDriverError(e: unknown, action?: string): EventplaneError | undefined {
  if (e instanceof EventplaneError) return undefined
  if (e instanceof errors.RequestError) {
    if (e.isNoResponders())
      return action
        ? noResponders(e, action)
        : new Unavailable('bus.unavailable', `nobody answers on NATS: ${firstLine(e)}`, { cause: e })
    if (e.cause !== undefined) {
      const inner = natsDriverError(e.cause, action)
      if (inner !== undefined) return inner
    }
    return unavailable(e, action)
  }
  if (e instanceof errors.PermissionViolationError) {
    const what = `${e.operation} to ${e.subject}`
    return new Forbidden('bus.forbidden', action ? `not permitted to ${action} (${what})` : `NATS: ${firstLine(e)}`, {
      cause: e,
    })
  }
  if (e instanceof errors.AuthorizationError)
    return new EventplaneError('bus.auth_failed', `NATS refused the credentials: ${firstLine(e)} (${REFUSED_NEXT})`, {
      cause: e,
    })
  if (e instanceof errors.UserAuthenticationExpiredError)
    return new EventplaneError('bus.auth_failed', `NATS refused the credentials: ${firstLine(e)}`, { cause: e })
  if (e instanceof errors.TimeoutError) {
    const message = action ? `no answer in time to ${action}` : 'NATS did not answer in time'
    return new EventplaneError('bus.timeout', message, { cause: e })
  }
  if (e instanceof errors.NoRespondersError) return noResponders(e, action)
  if (e instanceof jserrors.JetStreamNotEnabled) return jetStreamDisabled(undefined, e)
  if (e instanceof JetStreamApiError) {
    return new EventplaneError('bus.stream_mismatch', `JetStream refused to ${action ?? 'do this'}: ${firstLine(e)}`, {
      cause: e,
      details: { api_code: e.code },
    })
  }
  if (e instanceof errors.InvalidArgumentError)
    return new EventplaneError('bus.bad_request', `NATS refused to ${action ?? 'do this'}: ${firstLine(e)}`, {
      cause: e,
    })
  if (e instanceof errors.ConnectionError || e instanceof errors.ClosedConnectionError) return unavailable(e, action)
  return undefined
}

/** The JetStream API error codes eventplane acts on (nats-server's `err_code`). */
export const JS_API = {
  consumerNameExists: 10013,
  consumerNotFound: 10014,
  streamNameInUse: 10058,
  streamNotFound: 10059,
  streamSubjectOverlap: 10065,
  wrongLastMsgId: 10070,
  consumerExists: 10148,
} as const

/** True when `e` is JetStream refusing with one of `codes` (see {@link JS_API}). */
export function isJsApiError(e: unknown, ...codes: number[]): boolean {
  return e instanceof JetStreamApiError && codes.includes(e.code)
}

/** {@link natsDriverError}, and `bus.unavailable` for any other failure of a NATS call (typed errors pass). */
export function natsFailure(e: unknown, action?: string): EventplaneError {
  if (e instanceof EventplaneError) return e
  return natsDriverError(e, action) ?? unavailable(e, action)
}

function noResponders(e: unknown, action: string | undefined): EventplaneError {
  const message = action ? `nobody answers to ${action}` : 'no gateway is answering on NATS (is `evtctl up` running?)'
  return new Unavailable('bus.unavailable', message, { cause: e })
}

function unavailable(e: unknown, action: string | undefined): EventplaneError {
  const message = action ? `could not ${action}: ${firstLine(e)}` : `NATS is unavailable: ${firstLine(e)}`
  return new Unavailable('bus.unavailable', message, { cause: e })
}

/**
 * A JetStream publish answered with a no-responders status: no stream takes
 * `subject` (it was deleted, or its subjects changed) or JetStream is down.
 */
export function noStreamTakes(subject: string): EventplaneError {
  return new Unavailable('bus.unavailable', `no stream answers a publish on ${subject} (deleted, or JetStream down)`, {
    cause: new errors.NoRespondersError(subject),
  })
}

/** A JetStream publish whose ack did not come within its deadline. */
export function publishTimedOut(subject: string): EventplaneError {
  return new EventplaneError('bus.timeout', `no JetStream ack in time for a publish on ${subject}`, {
    cause: new errors.TimeoutError(),
  })
}

/** An ack of a delivery answered with no-responders: its consumer (or the consumer's stream) is gone. */
export function ackNotTaken(subject: string): EventplaneError {
  return new Unavailable('bus.unavailable', 'nobody took the ack (the consumer or its stream is gone)', {
    cause: new errors.NoRespondersError(subject),
  })
}

/** An ack JetStream did not confirm within its deadline. */
export function ackUnconfirmed(): EventplaneError {
  return new EventplaneError('bus.timeout', 'no confirmation of an ack in time', { cause: new errors.TimeoutError() })
}

/** Publishes still waiting for an ack when their connection closed. */
export function connectionClosed(): EventplaneError {
  return unavailable(new errors.ClosedConnectionError(), 'wait for an ack')
}

/**
 * The publish the server refused, when a connection status reports one: the
 * only place nats.js tells of a plain publish's permission violation (a
 * request would get it; a publish has no one to tell). `error` maps to
 * `bus.forbidden` through {@link natsFailure}.
 */
export function refusedPublish(status: Status): { subject: string; error: Error } | undefined {
  if (status.type !== 'error') return undefined
  const e = status.error
  return e instanceof errors.PermissionViolationError && e.operation === 'publish'
    ? { subject: e.subject, error: e }
    : undefined
}
