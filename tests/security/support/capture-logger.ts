import type { Logger } from '@eventplane/bus-nats'

export interface CapturedLog {
  logger: Logger
  /** Every call, serialized the way pino writes a line: the fields and `msg` as one JSON object. */
  lines: string[]
}

/** A logger at the most verbose level that keeps each line in memory, for asserting what was logged. */
export function captureLogger(): CapturedLog {
  const lines: string[] = []
  const at =
    (level: string) =>
    (obj: object, msg?: string): void => {
      lines.push(JSON.stringify({ level, ...obj, msg }))
    }
  return { lines, logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') } }
}
