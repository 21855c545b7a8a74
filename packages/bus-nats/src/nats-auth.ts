import { readFileSync } from 'node:fs'
import { EventplaneError } from '@eventplane/core'
import { type ConnectionOptions, credsAuthenticator } from '@nats-io/transport-node'

/** How a service process authenticates: a creds file (the account model), a user and password, or not at all. */
export interface NatsAuthSettings {
  natsCreds?: string
  natsUser?: string
  natsPassword?: string
}

/**
 * The nats.js connection options for `settings`: the creds file's user JWT and
 * nkey (read now; `bus.config` when unreadable), else user and password, else
 * nothing (an open server).
 */
export function natsAuth(settings: NatsAuthSettings): Partial<ConnectionOptions> {
  if (settings.natsCreds !== undefined) {
    let creds: Uint8Array
    try {
      creds = readFileSync(settings.natsCreds)
    } catch (e) {
      throw new EventplaneError(
        'bus.config',
        `cannot read NATS creds file ${settings.natsCreds} (${(e as NodeJS.ErrnoException).code ?? 'error'})`,
        { cause: e },
      )
    }
    return { authenticator: credsAuthenticator(creds) }
  }
  if (settings.natsUser !== undefined) return { user: settings.natsUser, pass: settings.natsPassword ?? '' }
  return {}
}
