import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { HEADS_STREAM_NAME, ensureHeadsStream, headsSubject } from '@eventplane/bus-nats'
import { type TestNatsServer, startNatsServer } from '@eventplane/bus-nats/testing'
import { type JetStreamManager, jetstream, jetstreamManager } from '@nats-io/jetstream'
import type { NatsConnection } from '@nats-io/transport-node'
import {
  type Observation,
  type Outcome,
  ViolationLog,
  observeJetStream,
  observePublish,
} from './support/nats-observe.ts'

/**
 * Who may do what to the published chain heads (stream EVENTPLANE_HEADS in
 * the log account), on our generated permission config: `acme` is the
 * tenant's own user, `acme-bare` a user of acme's account without any user
 * grants (the account boundary alone). Heads of acme are the target, the
 * tenant's own anchor: a tenant that could rewrite or erase them could hide
 * what it (or an operator it colludes with) did to its log.
 */
const TIERS = ['operator', 'relay', 'gateway', 'controller', 'acme', 'acme-bare'] as const
type Tier = (typeof TIERS)[number]

const A: Outcome = 'allow'
const D: Outcome = 'deny'
const J: Outcome = 'jetstream-refuses'

const EXPECTED = {
  //                       operator relay gateway controller acme acme-bare
  publish_heads: [A, A, D, D, D, D],
  stream_info: [A, A, D, D, D, D],
  delete_message: [J, D, D, D, D, D],
  purge_stream: [J, D, D, D, D, D],
  delete_stream: [A, D, D, D, D, D], // last: the operator's cell removes the stream
} satisfies Record<string, readonly Outcome[]>
type Action = keyof typeof EXPECTED

const JETSTREAM_REFUSALS: Partial<Record<Action, number>> = {
  delete_message: 10057, // deny_delete
  purge_stream: 10110, // deny_purge
}

/**
 * In a tenant account the heads stream does not exist at all: JetStream is
 * off there and nothing of the log account's JetStream API is imported, which
 * nats.js reports as a plain error ("jetstream is not enabled", or no
 * responders), not as a permission violation. Counted as denied when the
 * stream is unchanged.
 */
const NO_RESPONDERS = /no responders|503|jetstream is not enabled/i

const TIMEOUT_MS = 1500

describe('the published chain heads are the system side’s: tenants cannot write, purge or delete them', () => {
  let server: TestNatsServer
  const clients = new Map<Tier, { nc: NatsConnection; jsm: JetStreamManager; violations: ViolationLog }>()
  const client = (tier: Tier) => clients.get(tier)!
  const witness = () => client('operator')
  const state = () =>
    witness()
      .jsm.streams.info(HEADS_STREAM_NAME)
      .then((i) => i.state)

  before(async () => {
    server = await startNatsServer({ tenants: ['acme'] })
    for (const tier of TIERS) {
      const nc = tier === 'acme-bare' ? await server.connectAccountUser('acme') : await server.connect(tier)
      clients.set(tier, {
        nc,
        jsm: await jetstreamManager(nc, { checkAPI: false, timeout: TIMEOUT_MS }),
        violations: new ViolationLog(nc),
      })
    }
    // The relay makes the stream (as HeadsPublisher does) and publishes heads into it.
    await ensureHeadsStream(client('relay').jsm)
    await jetstream(client('relay').nc).publish(headsSubject('acme'), '{"format":"eventplane.heads.v1"}')
  })
  after(async () => {
    await server?.stop()
  })

  /** A JetStream call, where "no responders" in a tenant account (no such API there) counts as denied. */
  const js = async (call: () => Promise<unknown>, unchanged: () => Promise<boolean>): Promise<Observation> => {
    const o = await observeJetStream(call, unchanged)
    if (o.outcome === 'inconclusive' && NO_RESPONDERS.test(o.how) && (await unchanged()))
      return { outcome: 'deny', how: `no such API in the account (${o.how})` }
    return o
  }

  const ACTIONS: Record<Action, (tier: Tier) => Promise<Observation>> = {
    publish_heads: (tier) =>
      observePublish(client(tier).nc, client(tier).violations, witness().nc, headsSubject('acme'), TIMEOUT_MS).then(
        async (o) => {
          // A user of the tenant's account publishes into its own account, where nobody listens: nothing arrives.
          if (tier === 'acme-bare' && o.outcome === 'inconclusive' && o.how === 'delivered=false, violation=false')
            return { outcome: 'deny', how: 'published in its own account: never reached the heads stream' } as const
          return o
        },
      ),
    stream_info: (tier) =>
      js(
        () => client(tier).jsm.streams.info(HEADS_STREAM_NAME),
        async () => true,
      ),
    delete_message: async (tier) => {
      const { first_seq: seq, messages } = await state()
      return js(
        () => client(tier).jsm.streams.deleteMessage(HEADS_STREAM_NAME, seq),
        async () => (await state()).messages === messages,
      )
    },
    purge_stream: async (tier) => {
      const { messages } = await state()
      return js(
        () => client(tier).jsm.streams.purge(HEADS_STREAM_NAME),
        async () => (await state()).messages === messages,
      )
    },
    delete_stream: (tier) =>
      js(
        () => client(tier).jsm.streams.delete(HEADS_STREAM_NAME),
        () =>
          state().then(
            () => true,
            () => false,
          ),
      ),
  }

  test('every tier is allowed exactly what the table says; the stream keeps every message', async () => {
    const mismatches: string[] = []
    const runOrder = [...TIERS.filter((t) => t !== 'operator'), 'operator' as const]
    for (const action of Object.keys(EXPECTED) as Action[]) {
      if (action === 'delete_stream') {
        // Before the operator removes it: everything published so far is still there.
        const s = await state()
        assert.equal(s.first_seq, 1, 'no heads message was removed')
        assert.equal(s.messages, s.last_seq, 'no heads message was removed')
      }
      for (const tier of runOrder) {
        const expected = EXPECTED[action][TIERS.indexOf(tier)]!
        const observed = await ACTIONS[action](tier).catch(
          (e: unknown): Observation => ({ outcome: 'inconclusive', how: `observing failed: ${String(e)}` }),
        )
        const wrongReason = expected === J && observed.outcome === J && observed.apiCode !== JETSTREAM_REFUSALS[action]
        if (observed.outcome !== expected || wrongReason)
          mismatches.push(`${tier} ${action}: expected ${expected}, observed ${observed.outcome} (${observed.how})`)
      }
    }
    assert.deepEqual(mismatches, [])
  })
})
