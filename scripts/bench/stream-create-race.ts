// Counts what concurrent `ensureStream` calls right after a delete of EVENTPLANE give on a test nats-server
// (docs/testing.md, the note under the promise table): refusals by code, and "split" trials where the relays
// got streams of different `created` (two creates both succeeded: nats-server 2.9.10 does not serialise them).
// node --import tsx scripts/bench/stream-create-race.ts [trials=300] [relays=3]; load the machine to see any.
import { ensureStream } from '@eventplane/bus-nats'
import { startNatsServer } from '@eventplane/bus-nats/testing'
import { jetstreamManager } from '@nats-io/jetstream'

const trials = Number(process.argv[2] ?? 300)
const width = Number(process.argv[3] ?? 3)
const server = await startNatsServer({ tenants: ['acme'] })
try {
  const operator = await jetstreamManager(await server.connect('operator'))
  const relays = await Promise.all(
    Array.from({ length: width }, async () => jetstreamManager(await server.connect('relay'))),
  )
  const refusals: Record<string, number> = {}
  let failed = 0
  let split = 0
  for (let t = 0; t < trials; t++) {
    await operator.streams.delete('EVENTPLANE').catch(() => false)
    const results = await Promise.allSettled(relays.map((jsm) => ensureStream(jsm)))
    const created = new Set<string>()
    let bad = false
    for (const r of results) {
      if (r.status === 'fulfilled') created.add(r.value.created)
      else {
        bad = true
        const e = r.reason as { code?: string; details?: { api_code?: number } }
        const key = `${e.code}:${e.details?.api_code ?? ''}`
        refusals[key] = (refusals[key] ?? 0) + 1
      }
    }
    if (created.size > 1) split++
    if (bad || created.size > 1) failed++
  }
  console.log(JSON.stringify({ trials, relays: width, failed, split, refusals }))
} finally {
  await server.stop()
}
