import { jetStreamDisabled, natsDriverError } from '@eventplane/bus-nats'
import { jetstreamManager } from '@nats-io/jetstream'
import type { NatsConnection } from '@nats-io/transport-node'
import { redactUrl } from '@eventplane/store-pg'
import { CliError } from './cli-error.ts'

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
