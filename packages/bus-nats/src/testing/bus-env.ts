import { PgEventStore, ROLES } from '@eventplane/store-pg'
import { type TestDatabase, createTestDatabase } from '@eventplane/store-pg/testing'
import type { NatsConnection } from '@nats-io/transport-node'
import { type TestNatsServer, startNatsServer } from './nats-server.ts'

/** A test database, a project-run nats-server and the handles most tests need; `cleanup()` tears all down. */
export interface BusEnv {
  db: TestDatabase
  server: TestNatsServer
  intents: PgEventStore
  facts: PgEventStore
  relayStore: PgEventStore
  /** A connection as `user` that keeps reconnecting (it outlives `server.restart()`); closed by cleanup. */
  natsAs(user: string): Promise<NatsConnection>
  cleanup(): Promise<void>
}

/** Creates a test database and starts a nats-server with our permission config (`tenants` added). */
export async function createBusEnv(
  prefix: string,
  tenants: string[] = ['acme', 'globex'],
  serverOptions: { monitoring?: boolean } = {},
): Promise<BusEnv> {
  const db = await createTestDatabase(prefix)
  let server: TestNatsServer
  try {
    server = await startNatsServer({ tenants, ...serverOptions })
  } catch (e) {
    await db.drop()
    throw e
  }
  const connections: NatsConnection[] = []
  const cleanups: Array<() => Promise<unknown>> = []
  return {
    db,
    server,
    intents: new PgEventStore(db.connect(ROLES.intentWriter, 4)),
    facts: new PgEventStore(db.connect(ROLES.factWriter, 4)),
    relayStore: new PgEventStore(db.connect(ROLES.relay, 2)),
    async natsAs(user) {
      const nc = await server.connect(user, { maxReconnectAttempts: -1, reconnectTimeWait: 100 })
      connections.push(nc)
      return nc
    },
    async cleanup() {
      await Promise.allSettled(cleanups.map((c) => c()))
      await Promise.allSettled(connections.map((nc) => nc.close()))
      await Promise.allSettled([server.stop(), db.drop()])
    },
  }
}
