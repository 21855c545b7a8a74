import { jetstreamManager } from '@nats-io/jetstream'
import { jserrors } from '@nats-io/jetstream/internal'
import type { NatsConnection } from '@nats-io/transport-node'
import { EventplaneError } from '@eventplane/core'
import { redactUrl } from '@eventplane/store-pg'

/** The error for a NATS server without JetStream: a configuration error, not "retry later". */
export function jetStreamDisabled(url: string | undefined, cause: unknown): EventplaneError {
  const where = url === undefined ? 'the NATS server' : redactUrl(url)
  return new EventplaneError(
    'cli.config',
    `JetStream is not enabled on ${where}: start nats-server with -js (or a jetstream {} block in its config)`,
    { cause },
  )
}

/** Whether `e` is nats.js saying the server has no JetStream. */
export function isJetStreamDisabled(e: unknown): boolean {
  return e instanceof jserrors.JetStreamNotEnabled
}

/**
 * Asks the server for its JetStream account info before anything starts,
 * so a server without JetStream fails at once with its root cause instead
 * of a relay and consumers retrying until a timeout says "unavailable".
 */
export async function requireJetStream(nc: NatsConnection, url: string): Promise<void> {
  try {
    await jetstreamManager(nc)
  } catch (e) {
    if (isJetStreamDisabled(e)) throw jetStreamDisabled(url, e)
    throw e
  }
}
