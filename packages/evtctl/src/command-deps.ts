// What a command's action needs before its body runs. program.ts imports this only inside the action, so
// `evtctl --help` and `--version` never load the config resolver's store-pg, pino, postgres.js or NATS.
export { resolveConfig } from './config.ts'
export { hasPassword, passwordInArgvWarning, unknownEnvWarnings } from './config-warnings.ts'
export { Output } from './io.ts'
export { STOP_GRACE_MS, interruption } from './interrupt.ts'
export { createLogger } from './logger.ts'
export { Session } from './session.ts'
