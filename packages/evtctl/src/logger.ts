import { createRequire } from 'node:module'
import { pino, type Logger, type LevelWithSilent } from 'pino'
import type PinoPretty from 'pino-pretty'
import { colorEnabled } from './colors.ts'
import { type Writer, terminalSafe, terminalSafeText } from './io.ts'

/**
 * Paths pino censors: event `data` (may hold personal data) and `caused_by`
 * (a principal) wherever an event or envelope is logged (DESIGN §1.9).
 * Logs should carry ids, types and positions; this is the safety net.
 */
export const REDACT_PATHS = [
  'data',
  'caused_by',
  '*.data',
  '*.caused_by',
  '*.*.data',
  '*.*.caused_by',
  'password',
  '*.password',
  'pass',
  '*.pass',
]

/**
 * A pino logger writing to `destination` (stderr), with redaction on: JSON
 * lines for pipes and log collectors, pino-pretty's readable lines on a
 * terminal (coloured unless NO_COLOR). Redaction happens before either.
 */
export function createLogger(
  level: LevelWithSilent,
  destination: Writer,
  env: NodeJS.ProcessEnv = process.env,
): Logger {
  // Loaded only for a terminal: pino-pretty and its dependencies are a tenth of a command's start.
  const prettify = destination.isTTY
    ? (createRequire(import.meta.url)('pino-pretty') as typeof PinoPretty).prettyFactory({
        colorize: colorEnabled(destination, env),
        translateTime: 'SYS:HH:MM:ss.l',
        ignore: 'pid,hostname',
        // pino-pretty prints a field's value as JSON but the message as it is: a message that carries an error's
        // text (which may quote a subject another party chose) must not reach the terminal raw.
        messageFormat: (log, key) => terminalSafeText(String(log[key] ?? '')),
      })
    : undefined
  return pino(
    {
      name: 'evtctl',
      level,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      base: { pid: process.pid },
    },
    // Terminal-safe after pino-pretty, which parses the JSON line again (its colours are ESC sequences, kept): a
    // logged field another party chose (a refused subject, a principal) cannot drive the operator's terminal.
    { write: (line: string) => destination.write(terminalSafe(prettify ? prettify(line) : line)) },
  )
}
