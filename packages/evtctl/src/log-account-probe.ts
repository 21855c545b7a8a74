import { join } from 'node:path'
import { LOG_ACCOUNT, appliedAccountJwt, connectAuthDirUser, loadAuthDir } from '@eventplane/bus-nats/nats-config'
import { toEventplaneError } from './exit-codes.ts'
import type { Session } from './session.ts'

/** Whether the NATS server applies the log account JWT of the auth dir (`status`, with an auth dir). */
export interface LogAccountProbe {
  /** true: the JWT it applies is `accounts/EVENTPLANE.jwt`; false: another one; null: it could not be asked. */
  applied: boolean | null
  detail: string
}

const PROBE_TIMEOUT_MS = 2000

/**
 * Asks the server (as the auth dir's `system` user, one `ACCOUNTZ` of the log account, which it always has
 * loaded) for the log account JWT it applies, and compares it with the auth dir's `accounts/EVENTPLANE.jwt`:
 * another one means a JWT the auth dir wrote was not pushed (or the server was started with an older config),
 * so the server's revocations and signing keys are not the auth dir's. Undefined without an auth dir.
 */
export async function probeLogAccount(session: Session): Promise<LogAccountProbe | undefined> {
  const dir = session.config.natsAuthDir
  if (dir === undefined) return undefined
  const file = join(dir, 'accounts', `${LOG_ACCOUNT}.jwt`)
  try {
    const auth = loadAuthDir(dir)
    const system = await connectAuthDirUser(auth, 'system', session.config.natsUrl, {
      timeout: PROBE_TIMEOUT_MS,
      maxReconnectAttempts: 0,
    })
    try {
      const server = system.info?.server_id ?? ''
      const jwt = await appliedAccountJwt(system, server, auth.log.getPublicKey(), PROBE_TIMEOUT_MS)
      if (jwt === auth.logAccountJwt) return { applied: true, detail: `the server applies ${file}` }
      return {
        applied: false,
        detail: `the server applies ${jwt === undefined ? 'no log account JWT' : 'another log account JWT'} than ${file}: push it (evtctl creds revoke-old) or restart nats-server with the config nats-setup writes`,
      }
    } finally {
      await system.close()
    }
  } catch (e) {
    return {
      applied: null,
      detail: `cannot ask the server for the log account JWT: ${(await toEventplaneError(e)).message}`,
    }
  }
}
