export { findNatsServerBinary, startNatsServer } from './nats-server.ts'
export type { NatsCredentials, StartNatsServerOptions, TestNatsServer } from './nats-server.ts'
