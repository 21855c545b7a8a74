import type { Command } from 'commander'
import { errorFields } from '@eventplane/bus-nats'
import { type RunningPart, aborted } from '../runners.ts'
import type { Session } from '../session.ts'
import { sharedConnectionFailure } from './connection-closed.ts'

/** Services log at `info` unless `--log-level` or `EVENTPLANE_LOG_LEVEL` says otherwise. */
export function serviceLogLevel(session: Session, command: Command): void {
  const explicit = command.getOptionValueSourceWithGlobals('logLevel') !== 'default'
  if (!explicit && session.io.env.EVENTPLANE_LOG_LEVEL === undefined) session.log.level = 'info'
}

/**
 * Serves started `parts` until SIGINT/SIGTERM, then stops them in the order
 * given (so the first stops taking work before the ones after it drain) and
 * returns: the command exits 0. Prints one `ready` line once serving (none when a
 * signal came while the parts started) and one `stopped` line at the end. A part that fails on its own fails the command
 * (its typed error, one line) once every part was stopped. With `command` (a process of several parts on one
 * NATS user: `run`, `up`), a failure because the server closed a connection names that connection, its user and
 * every part stopped, `command` leading (see sharedConnectionFailure), whichever part noticed first.
 */
export async function serve(
  session: Session,
  parts: readonly RunningPart[],
  ready: Record<string, unknown>,
  readyLine: string,
  command?: string,
): Promise<void> {
  if (session.signal?.aborted !== true) {
    session.out.emit({ ready: true, ...ready }, () => `ready: ${readyLine}; Ctrl-C to stop`)
  }
  session.log.info({ parts: parts.map((p) => p.name) }, 'serving')
  let failure: { error: unknown } | undefined
  try {
    await Promise.race([aborted(session.signal), ...parts.map((p) => p.failed)])
  } catch (e) {
    failure = { error: e }
  }
  session.log.info({}, 'shutting down')
  // One stop: a server that stopped answering is waited for once, not once per part and connection.
  const waits = await session.stopWaits()
  for (const part of parts) {
    try {
      await part.stop(waits)
    } catch (e) {
      if (failure === undefined) throw e
      session.log.warn({ part: part.name, ...errorFields(e) }, 'stopping a part failed')
    }
  }
  if (failure !== undefined) {
    const names = parts.map((p) => p.label ?? p.name)
    throw command === undefined ? failure.error : sharedConnectionFailure(failure.error, command, names)
  }
  session.log.info({}, 'stopped')
  session.out.emit({ stopped: true }, () => 'stopped')
}

/** The start of a process of several parts (see startingParts): each part started through it, in order. */
export interface StartingParts {
  start<T>(label: string, start: () => Promise<T>): Promise<T>
}

/**
 * The start of a process of several parts on one NATS user (`run`, `up`), `labels` (as its failure lines name
 * the parts) in their start order. A part's start that fails because the server closed the connection for good
 * (its user revoked) ends with the line a failure after the start does (sharedConnectionFailure, exit 4):
 * `command` leading, the connection, its user and why, then the parts started and the one starting as
 * `stopped`, the others as `not started`. One format, whatever the moment. Any other failure passes as it is.
 */
export function startingParts(command: string, labels: readonly string[]): StartingParts {
  return {
    async start(label, start) {
      try {
        return await start()
      } catch (e) {
        const upTo = labels.indexOf(label) + 1
        throw sharedConnectionFailure(e, command, labels.slice(0, upTo), labels.slice(upTo))
      }
    },
  }
}
