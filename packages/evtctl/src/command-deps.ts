// What a command's action needs before its body runs. program.ts imports this only inside the action, so
// `evtctl --help` and `--version` never load the config resolver's store-pg, pino, postgres.js or NATS.
import type { Command } from 'commander'
import type { LevelWithSilent } from 'pino'
import { CliError } from './cli-error.ts'
import { LOG_LEVELS } from './log-levels.ts'

export { resolveConfig } from './config.ts'
export { hasPassword, passwordInArgvWarning, unknownEnvWarnings } from './config-warnings.ts'
export { Output } from './io.ts'
export { STOP_GRACE_MS, interruption } from './interrupt.ts'
export { createLogger } from './logger.ts'
export { Session } from './session.ts'

/** `--log-level`, else `EVENTPLANE_LOG_LEVEL`, else the default (`warn`). */
export function logLevel(command: Command, flag: LevelWithSilent, env: NodeJS.ProcessEnv): LevelWithSilent {
  const fromEnv = env.EVENTPLANE_LOG_LEVEL
  if (command.getOptionValueSourceWithGlobals('logLevel') !== 'default' || fromEnv === undefined || fromEnv === '')
    return flag
  if (!(LOG_LEVELS as readonly string[]).includes(fromEnv))
    throw new CliError('cli.config', `EVENTPLANE_LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}`)
  return fromEnv as LevelWithSilent
}
