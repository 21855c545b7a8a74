/**
 * The append → bus path of one writer at a low rate, stage by stage (see
 * bus-path.ts): a Relay on a fresh database and nats-server, one appender
 * appending one event, then pausing `--gap-ms`, `--events` times; a core NATS
 * subscriber stands for the consumer. With one appender nothing but the relay
 * itself and other sessions' transactions can hold an event back, so this
 * shows the relay's own wake-up path with little load from the bench.
 *
 *   pnpm tsx scripts/bench/bus-path-probe.ts [--events 400] [--gap-ms 2]
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { EventFactory } from '@eventplane/core'
import { PgEventStore, ROLES } from '@eventplane/store-pg'
import { startNatsServer } from '@eventplane/bus-nats/testing'
import { Relay } from '@eventplane/bus-nats'
import { loadavg } from 'node:os'
import { PathRecorder, pathRows } from './bus-path.ts'
import { Tracker } from './bus-tracker.ts'
import { argValue, printTable, benchDatabase } from './lib.ts'

const EVENTS = argValue('events', 400)
const GAP_MS = argValue('gap-ms', 2)

async function main(): Promise<void> {
  const load = loadavg()[0]!.toFixed(2)
  const db = await benchDatabase('path')
  const nats = await startNatsServer({ withAuth: false })
  try {
    const relay = new Relay({ sql: db.connect(ROLES.relay, 4), nc: await nats.connect('relay'), name: 'probe' })
    relay.start()
    while (relay.state !== 'active') await sleep(10)
    const tracker = new Tracker()
    const busNc = await nats.connect('operator')
    busNc.subscribe('eventplane.>', {
      callback: (_err, msg) => {
        const id = msg.headers?.get('Nats-Msg-Id')
        if (!id) return
        tracker.onBus(id)
        tracker.receive(id)
      },
    })
    await busNc.flush()
    const store = new PgEventStore(db.connect(ROLES.intentWriter, 2))
    const factory = EventFactory.forTenant('probe', { causedBy: 'user:bench' })
    const path = new PathRecorder().start()
    for (let i = 0; i < EVENTS; i++) {
      const stream = { tenant: 'probe', category: 'deployment', id: `p${i % 10}` }
      const event = factory.intent(stream, 'scaled', { i })
      tracker.sending(event.event_id)
      await store.append(stream, [event])
      tracker.appended(event.event_id)
      await sleep(GAP_MS)
    }
    const deadline = performance.now() + 10_000
    while (!tracker.caughtUp && performance.now() < deadline) await sleep(5)
    path.stop()
    console.log(
      `\nbus path probe: ${EVENTS} events, one appender, ${GAP_MS} ms between appends, load average at start ${load} ` +
        '(deliver = the same core subscriber, so ~0)',
    )
    printTable(pathRows(path.breakdown(tracker.times())))
    await relay.stop()
    await busNc.close()
  } finally {
    await nats.stop()
    await db.drop()
  }
}

main().catch((e: unknown) => {
  console.error(`bus-path-probe failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`)
  process.exitCode = 1
})
