import type { LevelWithSilent } from 'pino'

/** Accepted `--log-level` (and `EVENTPLANE_LOG_LEVEL`) values. */
export const LOG_LEVELS: readonly LevelWithSilent[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']
