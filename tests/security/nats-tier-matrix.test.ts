import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { STREAM_NAME, ensureStream, logFilter } from '@eventplane/bus-nats'
import { type TestNatsServer, startNatsServer } from '@eventplane/bus-nats/testing'
import { SERVICE_USERS } from '@eventplane/bus-nats/nats-config'
import { AckPolicy, type JetStreamManager, jetstream, jetstreamManager } from '@nats-io/jetstream'
import type { NatsConnection } from '@nats-io/transport-node'
import {
  type Observation,
  type Outcome,
  ViolationLog,
  observeJetStream,
  observePublish,
  observeRequest,
  observeSubscribe,
} from './support/nats-observe.ts'

/**
 * Every tier, with tenant acme standing for "a tenant"; "own tenant" below means acme, "other" globex.
 * The service tiers are users of the log account; acme is the user of its own account, which imports
 * only its submit subjects, its consumers (info, pull, ack) and its log subjects.
 */
const TIERS = ['operator', 'relay', 'gateway', 'controller', 'acme'] as const
type Tier = (typeof TIERS)[number]

const A: Outcome = 'allow'
const D: Outcome = 'deny'
const J: Outcome = 'jetstream-refuses'

/**
 * The expected table, one row per action, columns in {@link TIERS} order.
 * D: refused by the NATS permissions. J: permitted, refused by JetStream
 * itself, which is why the operator column is not all A: the stream has
 * `deny_purge` (nobody can purge, the operator included) and `deny_delete`
 * (nobody can delete a message). `deny_delete` does not protect the stream
 * itself: deleting the whole stream is an operator's power and stays one.
 * Changed by the account model (issue 10): a tenant creates no consumer at
 * all, not even on its own subjects (the operator provisions them with
 * `evtctl tenant add`), and pulls only its own consumers.
 */
const EXPECTED = {
  //                                operator relay gateway controller acme
  publish_own_log: [A, A, D, D, D],
  publish_other_log: [A, A, D, D, D],
  subscribe_own_log: [A, D, D, D, A],
  subscribe_other_log: [A, D, D, D, D],
  subscribe_whole_log: [A, D, D, D, D],
  request_own_submit: [A, D, D, D, A],
  request_other_submit: [A, D, D, D, D],
  serve_submit: [A, D, A, D, D],
  subscribe_shared_inbox: [A, A, A, A, D],
  subscribe_other_tenant_inbox: [A, D, D, D, D],
  // A forged JetStream ack: the relay matches PubAcks by its reply subject under `_INBOX.` (OrderedPublisher),
  // so nobody but the operator may publish there, or a service could make it checkpoint an unstored event.
  publish_service_inbox: [A, D, D, D, D],
  stream_info: [A, A, D, A, D],
  // The relay reads the stream's last message to decide where to resume; a tenant reads no message by sequence.
  read_stream_message: [A, A, D, D, D],
  create_own_tenant_consumer: [A, D, D, A, D],
  create_other_tenant_consumer: [A, D, D, A, D],
  pull_own_tenant_consumer: [A, D, D, A, A],
  pull_other_tenant_consumer: [A, D, D, A, D],
  delete_consumer: [A, D, D, D, D],
  delete_message: [J, D, D, D, D],
  purge_stream: [J, D, D, D, D],
  delete_stream: [A, D, D, D, D], // last: the operator's cell removes the stream
} satisfies Record<string, readonly [Outcome, Outcome, Outcome, Outcome, Outcome]>
type Action = keyof typeof EXPECTED

/** Why JetStream refuses the J cells (nats-server API codes), so a J never passes for another reason such as a missing stream. */
const JETSTREAM_REFUSALS: Partial<Record<Action, number>> = {
  delete_message: 10057, // "message delete not permitted": deny_delete
  purge_stream: 10110, // "stream purge not permitted": deny_purge
}

const TIMEOUT_MS = 1500
const OWN_LOG = 'eventplane.fact.acme.x.y'
const OTHER_LOG = 'eventplane.intent.globex.x.y'
const ACME_FILTER = logFilter({ tenant: 'acme' })
const GLOBEX_FILTER = logFilter({ tenant: 'globex' })

interface TierClient {
  tier: Tier
  nc: NatsConnection
  jsm: JetStreamManager
  violations: ViolationLog
}

/** The consumer a tier tries to delete: for the tenant its own listed one, to show even that is out of reach. */
const deleteTarget = (tier: Tier): string => (tier === 'acme' ? 'acme_ctl' : `delete_me_${tier}`)
/** Consumer names a tier creates; the tenant uses a listed name, so only the filter decides. */
const createName = (tier: Tier, which: 'own' | 'other'): string =>
  tier === 'acme' ? (which === 'own' ? 'acme_tail' : 'acme_proj') : `${tier}_${which}`

describe('NATS tier × action matrix (account model, tenants acme and globex)', () => {
  let server: TestNatsServer
  const clients = new Map<Tier, TierClient>()
  const client = (tier: Tier): TierClient => clients.get(tier)!
  /** The operator looks at results and probes on behalf of every cell. */
  const witness = (): TierClient => client('operator')
  let probe = 0

  before(async () => {
    server = await startNatsServer({ tenants: ['acme', 'globex'] })
    for (const tier of TIERS) {
      const nc = await server.connect(tier)
      // checkAPI off: the account-info probe is a request of its own, which the gateway may not make.
      clients.set(tier, {
        tier,
        nc,
        jsm: await jetstreamManager(nc, { checkAPI: false, timeout: TIMEOUT_MS }),
        violations: new ViolationLog(nc),
      })
    }
    // The stream exists already (tenant add provisions consumers on it); the relay checks its settings.
    await ensureStream(client('relay').jsm)
    for (const tier of TIERS) {
      await witness().jsm.consumers.add(STREAM_NAME, {
        name: deleteTarget(tier),
        filter_subject: ACME_FILTER,
        ack_policy: AckPolicy.Explicit,
      })
    }
    client('relay').nc.publish(OWN_LOG, 'seed') // a message for delete_message to aim at
    await client('relay').nc.flush()
    // A stand-in responder for submit requests, so an allowed request gets an answer.
    client('gateway').nc.subscribe('eventplane-api.submit.>', { callback: (_err, m) => void m.respond('{}') })
    await client('gateway').nc.flush()
  })
  after(async () => {
    await server?.stop()
  })

  const subscribe = (c: TierClient, subject: string, probeSubject: string): Promise<Observation> =>
    observeSubscribe(c.nc, subject, witness().nc, `${probeSubject}.${++probe}`, TIMEOUT_MS)
  const stillHasConsumer = (name: string) => async () =>
    witness()
      .jsm.consumers.info(STREAM_NAME, name)
      .then(
        () => true,
        () => false,
      )
  const streamState = () =>
    witness()
      .jsm.streams.info(STREAM_NAME)
      .then((i) => i.state)

  const ACTIONS: Record<Action, (c: TierClient) => Promise<Observation>> = {
    publish_own_log: (c) => observePublish(c.nc, c.violations, witness().nc, OWN_LOG, TIMEOUT_MS),
    publish_other_log: (c) => observePublish(c.nc, c.violations, witness().nc, OTHER_LOG, TIMEOUT_MS),
    subscribe_own_log: (c) => subscribe(c, ACME_FILTER, 'eventplane.fact.acme.probe'),
    subscribe_other_log: (c) => subscribe(c, GLOBEX_FILTER, 'eventplane.fact.globex.probe'),
    subscribe_whole_log: (c) => subscribe(c, 'eventplane.>', 'eventplane.internal.globex.probe'),
    request_own_submit: (c) => observeRequest(c.nc, 'eventplane-api.submit.acme.x.y', TIMEOUT_MS),
    request_other_submit: (c) => observeRequest(c.nc, 'eventplane-api.submit.globex.x.y', TIMEOUT_MS),
    serve_submit: (c) => subscribe(c, 'eventplane-api.submit.>', 'eventplane-api.submit.acme.probe'),
    subscribe_shared_inbox: (c) => subscribe(c, '_INBOX.>', '_INBOX.probe'),
    subscribe_other_tenant_inbox: (c) => subscribe(c, '_INBOX_globex.>', '_INBOX_globex.probe'),
    publish_service_inbox: (c) =>
      observePublish(c.nc, c.violations, witness().nc, `_INBOX.relayacks.${++probe}`, TIMEOUT_MS),
    stream_info: (c) => observeJetStream(() => c.jsm.streams.info(STREAM_NAME)),
    read_stream_message: (c) => observeJetStream(() => c.jsm.streams.getMessage(STREAM_NAME, { seq: 1 })),
    create_own_tenant_consumer: (c) =>
      observeJetStream(() =>
        c.jsm.consumers.add(STREAM_NAME, {
          name: createName(c.tier, 'own'),
          filter_subject: ACME_FILTER,
          ack_policy: AckPolicy.Explicit,
        }),
      ),
    create_other_tenant_consumer: (c) =>
      observeJetStream(() =>
        c.jsm.consumers.add(STREAM_NAME, {
          name: createName(c.tier, 'other'),
          filter_subject: GLOBEX_FILTER,
          ack_policy: AckPolicy.Explicit,
        }),
      ),
    pull_own_tenant_consumer: (c) =>
      observeJetStream(async () =>
        (await jetstream(c.nc).consumers.get(STREAM_NAME, 'acme_proj')).next({ expires: 1000 }),
      ),
    pull_other_tenant_consumer: (c) =>
      observeJetStream(async () =>
        (await jetstream(c.nc).consumers.get(STREAM_NAME, 'globex_proj')).next({ expires: 1000 }),
      ),
    delete_consumer: (c) =>
      observeJetStream(
        () => c.jsm.consumers.delete(STREAM_NAME, deleteTarget(c.tier)),
        stillHasConsumer(deleteTarget(c.tier)),
      ),
    delete_message: async (c) => {
      const { first_seq: seq, messages } = await streamState()
      return observeJetStream(
        () => c.jsm.streams.deleteMessage(STREAM_NAME, seq),
        async () => (await streamState()).messages === messages,
      )
    },
    purge_stream: async (c) => {
      const { messages } = await streamState()
      return observeJetStream(
        () => c.jsm.streams.purge(STREAM_NAME),
        async () => (await streamState()).messages === messages,
      )
    },
    delete_stream: (c) =>
      observeJetStream(
        () => c.jsm.streams.delete(STREAM_NAME),
        () =>
          streamState().then(
            () => true,
            () => false,
          ),
      ),
  }

  test('the service users are exactly the tiers of the matrix, besides the tenant', () => {
    assert.deepEqual([...SERVICE_USERS].sort(), TIERS.filter((t) => t !== 'acme').sort())
  })

  test('every tier is allowed exactly what the table says, and refused the way it says', async () => {
    const mismatches: string[] = []
    // The operator goes last in each row: its delete_stream cell ends the stream.
    const runOrder = [...TIERS.filter((t) => t !== 'operator'), 'operator' as const]
    for (const action of Object.keys(EXPECTED) as Action[]) {
      for (const tier of runOrder) {
        const expected = EXPECTED[action][TIERS.indexOf(tier)]!
        const observed = await ACTIONS[action](client(tier)).catch(
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
