export { startNatsServer } from './nats-server.ts'
export { findNatsServerBinary } from './nats-process.ts'
export type { NatsCredentials, StartNatsServerOptions, TestNatsServer } from './nats-server.ts'
