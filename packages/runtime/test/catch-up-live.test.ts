import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { type Checkpoint, compareCheckpoints } from '@eventplane/core'
import {
  type Controller,
  ControllerRunner,
  type LiveSource,
  ProjectionRunner,
  controllerLiveSource,
  defineReducerProjection,
  projectionDigest,
  projectionLiveSource,
  rebuildProjection,
} from '../src/index.ts'
import { type LiveHarness, startHarness } from './harness.ts'
import { eventually, factoryFor, stream } from './helpers.ts'

/** Intents per stream; a double apply shows as a count above the number of intents. */
const intentCounter = defineReducerProjection({
  name: 'test_intent_counter',
  version: 1,
  initial: () => ({ count: 0 }),
  apply: (s) => ({ count: s.count + 1 }),
  key: (e) => e.stream.id,
  filter: { kinds: ['intent'] },
})

const STREAMS = ['s0', 's1', 's2']

describe('catch-up to live', () => {
  let h: LiveHarness
  const stops: (() => Promise<void>)[] = []
  before(async () => {
    h = await startHarness('ep_catchup_live')
  })
  after(async () => {
    for (const stop of stops.reverse()) await stop().catch(() => {})
    await h?.stop()
  })

  test('with appends running all along, a projection and a controller started meanwhile apply every event once', async () => {
    const f = factoryFor('acme')
    let intents = 0
    let last: Checkpoint | undefined
    const append = async (id: string, n: number): Promise<Checkpoint> => {
      const s = stream('acme', id, 'load')
      const r = await h.intents.append(
        s,
        Array.from({ length: n }, () => f.intent(s, 'tick', { n: intents })),
      )
      intents += n
      const e = r.events.at(-1)!
      last = { txId: e.txId, position: e.position }
      return last
    }
    /** Appends and waits until the relay has published them: they are in JetStream before the caller goes on. */
    const appendPublished = async (n: number): Promise<void> => {
      const c = await append(STREAMS[intents % STREAMS.length]!, n)
      await eventually(() => compareCheckpoints(h.relay.checkpoint ?? c, c) >= 0, 60_000, 'the relay to publish')
    }
    // The runners' hand-over moments, made certain: events land in the stream right before each runner
    // creates its consumer and right before it opens its subscription, whatever the background load does.
    // Only until the end markers: a runner that resyncs opens again (a catch-up can end short of the
    // stream when the gap-safe horizon of its last read dips; the live gap check then resyncs it), and
    // intents appended after the markers would be waited for by no one.
    let interleaving = true
    const handOvers: Promise<void>[] = []
    const handOver = (): Promise<void> => {
      if (!interleaving) return Promise.resolve()
      const appended = appendPublished(3)
      handOvers.push(appended)
      return appended
    }
    const interleave = (source: LiveSource): LiveSource => ({
      async prepare() {
        await handOver()
        await source.prepare()
      },
      async open(signal) {
        await handOver()
        return source.open(signal)
      },
    })

    let loading = true
    const load = (async () => {
      for (let i = 0; loading; i++) {
        await append(STREAMS[i % STREAMS.length]!, 1)
        await sleep(2) // pacing only
      }
    })()
    await eventually(() => intents >= 20, 20_000, 'the load to be under way')

    const reconciled = new Map<string, number>()
    const mirror: Controller = {
      name: 'mirror',
      categories: ['load'],
      async reconcile(event, ctx) {
        await ctx.emit(ctx.fact('seen', { intent: event.event_id }))
        reconciled.set(event.event_id, (reconciled.get(event.event_id) ?? 0) + 1)
      },
    }
    const projection = new ProjectionRunner({
      projection: intentCounter,
      sql: h.projector,
      live: interleave(projectionLiveSource(h.nc, intentCounter, { ackWaitMs: 5000 })),
      batchSize: 7,
    })
    const controller = new ControllerRunner({
      controller: mirror,
      store: h.facts,
      live: interleave(controllerLiveSource(h.nc, mirror, { ackWaitMs: 5000 })),
    })
    stops.push(
      () => projection.stop(),
      () => controller.stop(),
    )
    await Promise.all([projection.start(), controller.start()])
    const atLive = intents
    await eventually(() => intents >= atLive + 20, 20_000, 'more appends after both went live')
    loading = false
    await load
    interleaving = false
    await Promise.all(handOvers)
    // One last intent per stream: each stream is reconciled in order, so once these are, all are.
    const markers: string[] = []
    for (const id of STREAMS) {
      const s = stream('acme', id, 'load')
      const marker = f.intent(s, 'tick', { marker: true })
      markers.push(marker.event_id)
      const r = await h.intents.append(s, [marker])
      intents++
      last = { txId: r.events[0]!.txId, position: r.events[0]!.position }
    }
    const end = last!
    await eventually(() => compareCheckpoints(projection.checkpoint, end) >= 0, 60_000, 'the projection at the end')
    await eventually(() => markers.every((id) => reconciled.has(id)), 60_000, 'the controller at the end')
    await Promise.all([projection.stop(), controller.stop()])

    const [row] = await h.db.admin<{ n: number }[]>`
      select sum((state->>'count')::int)::int as n from eventplane.projection_state where projection = ${intentCounter.name}`
    assert.equal(row!.n, intents, 'the projection applied every intent exactly once')
    const rebuilt = await rebuildProjection({ projection: intentCounter, sql: h.projector })
    assert.equal((await projectionDigest(h.projector, intentCounter)).sha256, rebuilt.digest?.sha256)

    const all = await h.db.admin<{ kind: string; event_id: string; causation_id: string | null }[]>`
      select kind, event_id::text, causation_id::text from eventplane.events where category = 'load'`
    const ids = all.filter((e) => e.kind === 'intent').map((e) => e.event_id)
    assert.equal(ids.length, intents)
    assert.deepEqual(
      ids.filter((id) => !reconciled.has(id)),
      [],
      'the controller reconciled every intent',
    )
    const causes = all.filter((e) => e.kind === 'fact').map((e) => e.causation_id)
    assert.deepEqual(causes.sort(), [...ids].sort(), 'one fact per intent: every effect exactly once')
  })
})
