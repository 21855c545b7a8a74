import assert from 'node:assert/strict'
import { connect } from '@nats-io/transport-node'
import { credsAuthenticator } from '../nkeys.ts'

/** Connects once to `url` with `creds`, no reconnect: resolves once the server answered a flush, rejects when it refuses. */
export async function connectsWith(url: string, creds: Uint8Array): Promise<void> {
  const nc = await connect({ servers: url, authenticator: credsAuthenticator(creds), maxReconnectAttempts: 0 })
  await nc.flush()
  await nc.close()
}

/** Asserts that the server at `url` refuses `creds` (`Authorization Violation`); `what` names them in the failure. */
export function refusedWith(url: string, creds: Uint8Array, what: string): Promise<void> {
  return assert.rejects(connectsWith(url, creds), /Authorization Violation/, `${what} is refused`)
}
