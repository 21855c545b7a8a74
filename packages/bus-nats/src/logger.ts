/**
 * The slice of a pino logger bus-nats uses (a pino `Logger` fits). Callers
 * pass ids, types, positions and error codes only, never event data.
 */
export interface Logger {
  debug(obj: object, msg?: string): void
  info(obj: object, msg?: string): void
  warn(obj: object, msg?: string): void
  error(obj: object, msg?: string): void
}

const noop = (): void => {}

/** Drops everything; the default when no logger is given. */
export const silentLogger: Logger = { debug: noop, info: noop, warn: noop, error: noop }

/**
 * Loggable fields of an error: its stable code (eventplane, postgres or NATS)
 * and the first line of its message, except where the message may echo the
 * client's input (validation errors, PostgreSQL data exceptions): those log
 * the code alone, so no data key or value reaches a log line.
 */
export function errorFields(e: unknown): { code?: string; err?: string } {
  const code = typeof e === 'object' && e !== null && 'code' in e ? String((e as { code: unknown }).code) : undefined
  if (code !== undefined && (code.startsWith('core.') || /^22[0-9A-Z]{3}$/.test(code))) return { code }
  const message = e instanceof Error ? e.message : String(e)
  return { ...(code === undefined ? {} : { code }), err: message.split('\n')[0]!.slice(0, 300) }
}
