import type { Logger } from '../../src/logger.ts'

export interface LogEntry {
  level: string
  msg: string
  fields: Record<string, unknown>
}

/** A logger that keeps every call as an entry (level, message, fields), for asserting what was logged. */
export function captureLogger(): Logger & { entries: LogEntry[] } {
  const entries: LogEntry[] = []
  const at =
    (level: string) =>
    (fields: object, msg?: string): void => {
      entries.push({ level, msg: msg ?? '', fields: fields as Record<string, unknown> })
    }
  return { entries, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') }
}
