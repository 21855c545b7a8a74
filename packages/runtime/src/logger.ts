/**
 * The runtime logs through the same slice of pino as the bus: ids, types,
 * positions and error codes only, never event data (validation messages are
 * logged by code alone, see bus-nats `errorFields`).
 */
export { errorFields, silentLogger } from '@eventplane/bus-nats'
export type { Logger } from '@eventplane/bus-nats'
