import { EventplaneError } from '@eventplane/core'
import { CliError, interruptedError } from './cli-error.ts'

/** How long a command that stops itself on SIGINT (up, subscribe, tail, replay) may take to do so. */
export const STOP_GRACE_MS = 10_000

/**
 * A promise that rejects with `cli.interrupted` once `signal` aborts and
 * `graceMs` more have passed, so a command stuck on I/O that ignores the
 * signal still ends on the first Ctrl-C; `cancel()` when the command is done.
 */
export function interruption(
  signal: AbortSignal | undefined,
  graceMs: number,
): { interrupted: Promise<never>; cancel(): void } {
  let timer: NodeJS.Timeout | undefined
  let onAbort: (() => void) | undefined
  const interrupted = new Promise<never>((_, reject) => {
    if (signal === undefined) return
    const fire = (): void => {
      const reason: unknown = signal.reason
      if (graceMs > 0) {
        reject(new CliError('cli.interrupted', `interrupted, and did not stop within ${graceMs / 1000} s`))
      } else {
        reject(reason instanceof EventplaneError ? reason : interruptedError(reason))
      }
    }
    onAbort = () => {
      if (graceMs === 0) fire()
      else timer = setTimeout(fire, graceMs)
    }
    if (signal.aborted) onAbort()
    else signal.addEventListener('abort', onAbort, { once: true })
  })
  interrupted.catch(() => {})
  return {
    interrupted,
    cancel() {
      clearTimeout(timer)
      if (onAbort) signal?.removeEventListener('abort', onAbort)
    },
  }
}
