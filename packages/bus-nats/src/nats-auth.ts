import { readFileSync } from 'node:fs'
import { EventplaneError } from '@eventplane/core'
import type { Authenticator, ConnectionOptions } from '@nats-io/transport-node'
import { credsAuthenticator } from './nkeys.ts'

/** How a service process authenticates: a creds file (the account model), a user and password, or not at all. */
export interface NatsAuthSettings {
  natsCreds?: string
  natsUser?: string
  natsPassword?: string
}

/**
 * The nats.js connection options for `settings`: the creds file's user JWT and
 * nkey, else user and password, else nothing (an open server). The creds file
 * is read now (`bus.config` when unreadable or not a creds file), and again
 * on each connect and reconnect ({@link credsFileAuthenticator}), so a
 * service whose creds were rotated on its host reconnects with the new ones.
 */
export function natsAuth(settings: NatsAuthSettings): Partial<ConnectionOptions> {
  if (settings.natsCreds !== undefined) return { authenticator: credsFileAuthenticator(settings.natsCreds) }
  if (settings.natsUser !== undefined) return { user: settings.natsUser, pass: settings.natsPassword ?? '' }
  return {}
}

/**
 * An authenticator that reads `file` once per authentication (each connect
 * and reconnect: nats.js calls it once per server nonce) and signs with what
 * it read: the JWT and the seed of one read, never of two (a rotation
 * renaming the file in between would pair a JWT with another key's seed).
 * A file briefly unreadable or not a creds file keeps the last good bytes.
 * The first read is now: `bus.config` when it fails. `read` is how it reads
 * (tests count the reads).
 */
export function credsFileAuthenticator(file: string, read: (file: string) => Uint8Array = readFileSync): Authenticator {
  let good = readCreds(file, read)
  return (nonce?: string) => {
    let bytes: Uint8Array
    try {
      bytes = read(file)
      const signed = credsAuthenticator(bytes)(nonce)
      good = bytes
      return signed
    } catch {
      return credsAuthenticator(good)(nonce)
    }
  }
}

function readCreds(file: string, read: (file: string) => Uint8Array): Uint8Array {
  let bytes: Uint8Array
  try {
    bytes = read(file)
  } catch (e) {
    throw new EventplaneError(
      'bus.config',
      `cannot read NATS creds file ${file} (${(e as NodeJS.ErrnoException).code ?? 'error'})`,
      { cause: e },
    )
  }
  try {
    credsAuthenticator(bytes)('')
  } catch (e) {
    throw new EventplaneError('bus.config', `NATS creds file ${file} holds no user JWT and nkey seed`, { cause: e })
  }
  return bytes
}
