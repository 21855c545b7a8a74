/**
 * Observing what a nats-server lets one connection do, from the server's own
 * answers: the refusal shapes nats.js v3 reports (a RequestError caused by a
 * PermissionViolationError, a subscription closed with one, or an `error`
 * status for a plain PUB), deliveries to a witness connection, and JetStream
 * API results.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { JetStreamApiError } from '@nats-io/jetstream'
import { type NatsConnection, PermissionViolationError, RequestError, nuid } from '@nats-io/transport-node'

/**
 * `allow`: the server let it through and it took effect. `deny`: NATS
 * permissions refused it. `jetstream-refuses`: permissions let it through and
 * the JetStream API refused it (stream settings such as `deny_purge`).
 */
export type Outcome = 'allow' | 'deny' | 'jetstream-refuses'

export interface Observation {
  outcome: Outcome | 'inconclusive'
  /** What was seen, for the mismatch report. */
  how: string
  /** The JetStream API error code, when JetStream refused. */
  apiCode?: number
}

const allow = (how: string): Observation => ({ outcome: 'allow', how })
const deny = (how: string): Observation => ({ outcome: 'deny', how })
const inconclusive = (how: string): Observation => ({ outcome: 'inconclusive', how })

/** nats.js v3 rejects a refused request with a RequestError whose `cause` is the violation. */
export function violationOf(e: unknown): PermissionViolationError | undefined {
  if (e instanceof PermissionViolationError) return e
  return e instanceof Error && e.cause instanceof PermissionViolationError ? e.cause : undefined
}

/** The permission violations the server reported on one connection (`-ERR` arrives on `nc.status()`). */
export class ViolationLog {
  readonly #seen: PermissionViolationError[] = []

  constructor(nc: NatsConnection) {
    void (async () => {
      for await (const s of nc.status())
        if (s.type === 'error' && s.error instanceof PermissionViolationError) this.#seen.push(s.error)
    })()
  }

  /** The violation for `subject`, waiting up to `timeoutMs` for it. */
  async find(
    operation: 'publish' | 'subscription',
    subject: string,
    timeoutMs: number,
  ): Promise<PermissionViolationError | undefined> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const hit = this.#seen.find((v) => v.operation === operation && v.subject === subject)
      if (hit !== undefined || Date.now() >= deadline) return hit
      await sleep(10)
    }
  }
}

/**
 * A plain PUB: allowed when a witness subscribed to the exact subject gets it
 * (and the server reported nothing), denied when the server reported the
 * violation and nothing was delivered.
 */
export async function observePublish(
  publisher: NatsConnection,
  violations: ViolationLog,
  witness: NatsConnection,
  subject: string,
  timeoutMs: number,
): Promise<Observation> {
  const token = nuid.next()
  let delivered = false
  const spy = witness.subscribe(subject, {
    callback: (_err, m) => {
      if (m.string() === token) delivered = true
    },
  })
  try {
    await witness.flush()
    publisher.publish(subject, token)
    // The server routes the message to the witness before it answers the publisher's PING,
    // and answers the witness's PING after that: both flushes done, delivery is settled.
    await publisher.flush()
    await witness.flush()
    const violation = await violations.find('publish', subject, delivered ? 0 : timeoutMs)
    if (delivered && violation === undefined) return allow('delivered to a witness')
    if (!delivered && violation !== undefined) return deny('permissions violation (publish), nothing delivered')
    return inconclusive(`delivered=${delivered}, violation=${violation !== undefined}`)
  } finally {
    spy.unsubscribe()
  }
}

/**
 * A SUB: allowed when it stays open and receives a probe the prober publishes
 * on `probeSubject`; denied when the server closes it with a violation.
 */
export async function observeSubscribe(
  nc: NatsConnection,
  subject: string,
  prober: NatsConnection,
  probeSubject: string,
  timeoutMs: number,
): Promise<Observation> {
  const token = nuid.next()
  let received!: () => void
  const gotProbe = new Promise<'probe'>((resolve) => (received = () => resolve('probe')))
  const sub = nc.subscribe(subject, {
    callback: (err, m) => {
      if (!err && m.string() === token) received()
    },
  })
  try {
    await nc.flush()
    prober.publish(probeSubject, token)
    await prober.flush()
    const first = await Promise.race([gotProbe, sub.closed, sleep(timeoutMs, 'timeout' as const)])
    if (first === 'probe')
      return sub.isClosed() ? inconclusive('probe received, then closed') : allow('open, probe received')
    if (first instanceof PermissionViolationError && first.operation === 'subscription' && first.subject === subject) {
      return deny('closed with a permissions violation (subscription)')
    }
    return inconclusive(first === 'timeout' ? 'neither closed nor received the probe' : `closed with ${String(first)}`)
  } finally {
    if (!sub.isClosed()) sub.unsubscribe()
  }
}

/** A request to a subject some responder serves: allowed when the reply arrives, denied by a publish violation. */
export async function observeRequest(nc: NatsConnection, subject: string, timeoutMs: number): Promise<Observation> {
  try {
    await nc.request(subject, '{}', { timeout: timeoutMs })
    return allow('answered')
  } catch (e) {
    const v = violationOf(e)
    if (v?.operation === 'publish' && v.subject === subject) return deny('permissions violation (publish)')
    if (v !== undefined) return inconclusive(`violation on ${v.operation} ${v.subject}`)
    if (e instanceof RequestError && e.isNoResponders())
      return inconclusive('no responders (the server let it through, nobody served it)')
    return inconclusive(`failed: ${e instanceof Error ? e.message : String(e)}`)
  }
}

/**
 * A JetStream API call: allowed when it succeeds, denied by a permissions
 * violation, refused by JetStream with an API error. `stillThere` runs after a
 * refusal (as a tier that may look) and must confirm nothing happened.
 */
export async function observeJetStream(
  call: () => Promise<unknown>,
  stillThere?: () => Promise<boolean>,
): Promise<Observation> {
  let observed: Observation
  try {
    const result = await call()
    observed = result === false ? inconclusive('the API answered false') : allow('API call succeeded')
  } catch (e) {
    const v = violationOf(e)
    if (v !== undefined) observed = deny(`permissions violation (${v.operation} ${v.subject})`)
    else if (e instanceof JetStreamApiError)
      observed = { outcome: 'jetstream-refuses', how: `JetStream API error ${e.code}: ${e.message}`, apiCode: e.code }
    else observed = inconclusive(`failed: ${e instanceof Error ? e.message : String(e)}`)
  }
  if (observed.outcome !== 'allow' && stillThere !== undefined && !(await stillThere())) {
    return { ...observed, outcome: 'inconclusive', how: `${observed.how}, yet the target is gone` }
  }
  return observed
}
