import { type ErrorCode, EventplaneError, type EventplaneErrorOptions } from '@eventplane/core'

/** evtctl's own codes: how the command line was used, and the CLI's own failures. The libraries never throw them. */
export type CliErrorCode = 'cli.bad_usage' | 'cli.config' | 'cli.internal' | 'cli.interrupted'

/** Any code evtctl reports: a library's or its own. */
export type EvtctlErrorCode = ErrorCode | CliErrorCode

/** A typed error as evtctl reports it: a library's error or a {@link CliError}. */
export type EvtctlError = EventplaneError<EvtctlErrorCode>

/** An error of evtctl itself (bad usage, bad configuration, interrupted, a bug), with a stable `cli.*` code. */
export class CliError extends EventplaneError<CliErrorCode> {
  constructor(code: CliErrorCode, message: string, options: EventplaneErrorOptions = {}) {
    super(code, message, options)
  }
}

/** True when `e` is a typed error (a library's or evtctl's own), and has `code` if one is given. */
export function isEvtctlError(e: unknown, code?: EvtctlErrorCode): e is EvtctlError {
  return e instanceof EventplaneError && (code === undefined || e.code === code)
}

/** `cli.interrupted` for an abort: main.ts aborts with `interrupted by SIGINT` (or SIGTERM), an embedder with anything. */
export function interruptedError(reason: unknown): CliError {
  const said =
    reason instanceof Error && /^interrupted by SIG[A-Z]+$/.test(reason.message) ? reason.message : 'interrupted'
  return new CliError('cli.interrupted', said, { cause: reason })
}
