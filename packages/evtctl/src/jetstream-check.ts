import { jetStreamDisabled, natsDriverError, natsFailure } from '@eventplane/bus-nats'
import { type JetStreamManager, jetstreamManager } from '@nats-io/jetstream'
import type { NatsConnection } from '@nats-io/transport-node'
import { redactUrl } from '@eventplane/store-pg'
import { CliError } from './cli-error.ts'
import type { Session } from './session.ts'

/**
 * Asks the server for its JetStream account info before anything starts,
 * so a server without JetStream fails at once with its root cause instead
 * of a relay and consumers retrying until a timeout says "unavailable".
 * bus-nats classifies the failure (`bus.config`); for the command line it is
 * a setting to fix (`cli.config`, naming the URL).
 */
export async function requireJetStream(nc: NatsConnection, url: string): Promise<void> {
  try {
    await jetstreamManager(nc)
  } catch (e) {
    if (natsDriverError(e)?.code === 'bus.config')
      throw new CliError('cli.config', jetStreamDisabled(redactUrl(url)).message, { cause: e })
    throw e
  }
}

const managers = new WeakMap<NatsConnection, Promise<JetStreamManager>>()

/**
 * The JetStream manager of the session's NATS connection, for what `status` reads (controllers' consumers, the log
 * stream): made once per connection (one account-info request), a server without JetStream as `bus.config` naming
 * the URL, any other failure classified by bus-nats. The callers report a failure rather than throw it.
 */
export async function sessionJetStream(session: Session): Promise<JetStreamManager> {
  const nc = await session.nats()
  let jsm = managers.get(nc)
  if (jsm === undefined) {
    jsm = jetstreamManager(nc).catch((e: unknown) => {
      const typed = natsFailure(e, 'reach the JetStream API')
      throw typed.code === 'bus.config' ? jetStreamDisabled(redactUrl(session.config.natsUrl), e) : typed
    })
    managers.set(nc, jsm)
  }
  return jsm
}
