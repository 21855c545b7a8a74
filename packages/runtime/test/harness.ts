import { type Checkpoint, START } from '@eventplane/core'
import { Relay, ensureStream } from '@eventplane/bus-nats'
import { jetstreamManager } from '@nats-io/jetstream'
import { PgEventStore, ROLES, type Sql } from '@eventplane/store-pg'
import { createTestDatabase, type TestDatabase } from '@eventplane/store-pg/testing'
import type { NatsConnection } from '@nats-io/transport-node'
// bus-nats does not export its testing subpath in package.json (yet): import the file.
import { type TestNatsServer, startNatsServer } from '@eventplane/bus-nats/testing'
import { PROJECTOR_ROLE } from '../src/roles.ts'

/** A database, a project-run nats-server and a relay between them; `stop()` tears everything down. */
export interface LiveHarness {
  db: TestDatabase
  nats: TestNatsServer
  nc: NatsConnection
  relay: Relay
  projector: Sql
  intents: PgEventStore
  facts: PgEventStore
  /** The last event of the gap-safe order, as the admin sees it. */
  logEnd(): Promise<Checkpoint>
  stop(): Promise<void>
}

export async function startHarness(prefix: string): Promise<LiveHarness> {
  const db = await createTestDatabase(prefix)
  const cleanups: (() => Promise<void>)[] = [() => db.drop()]
  const stop = async (): Promise<void> => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {})
  }
  try {
    const nats = await startNatsServer({ withAuth: false })
    cleanups.push(() => nats.stop())
    const nc = await nats.connect()
    // The relay creates the stream too, but consumers may be created before it gets there.
    await ensureStream(await jetstreamManager(nc))
    const relay = new Relay({ sql: db.connect(ROLES.relay, 3), nc, pollIntervalMs: 100 })
    relay.start()
    cleanups.push(() => relay.stop())
    return {
      db,
      nats,
      nc,
      relay,
      projector: db.connect(PROJECTOR_ROLE, 4),
      intents: new PgEventStore(db.connect(ROLES.intentWriter, 3)),
      facts: new PgEventStore(db.connect(ROLES.factWriter, 4)),
      async logEnd() {
        const [row] = await db.admin<{ tx_id: string; global_position: string }[]>`
          select tx_id::text, global_position::text from eventplane.events order by tx_id desc, global_position desc limit 1`
        return row ? { txId: BigInt(row.tx_id), position: BigInt(row.global_position) } : START
      },
      stop,
    }
  } catch (e) {
    await stop()
    throw e
  }
}
