export { startNatsServer } from './nats-server.ts'
export { OWN_PROCESS_GROUP, dieWithParent, findNatsServerBinary, reapOnExit } from './nats-process.ts'
export type { NatsCredentials, StartNatsServerOptions, TestNatsServer } from './nats-server.ts'
export { nextProtocolMessage } from './nats-frames.ts'
