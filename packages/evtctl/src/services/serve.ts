import type { Command } from 'commander'
import { type RunningPart, aborted } from '../runners.ts'
import type { Session } from '../session.ts'

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
 * (its typed error, one line); the session's cleanups stop the others.
 */
export async function serve(
  session: Session,
  parts: readonly RunningPart[],
  ready: Record<string, unknown>,
  readyLine: string,
): Promise<void> {
  if (session.signal?.aborted !== true) {
    session.out.emit({ ready: true, ...ready }, () => `ready: ${readyLine}; Ctrl-C to stop`)
  }
  session.log.info({ parts: parts.map((p) => p.name) }, 'serving')
  await Promise.race([aborted(session.signal), ...parts.map((p) => p.failed)])
  session.log.info({}, 'shutting down')
  for (const part of parts) await part.stop()
  session.log.info({}, 'stopped')
  session.out.emit({ stopped: true }, () => 'stopped')
}
