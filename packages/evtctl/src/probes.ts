import { performance } from 'node:perf_hooks'
import { natsFailure, submitSubject, tenantInboxPrefix } from '@eventplane/bus-nats'
import { type NatsConnection, nuid } from '@nats-io/transport-node'
import { toEventplaneError } from './exit-codes.ts'
import type { Session } from './session.ts'

/** What the gateway probe found. */
export interface GatewayProbe {
  /** true: a gateway answered; false: NATS is up but no gateway answered; null: no NATS connection (unreachable, or the credentials refused: `detail` says which). */
  alive: boolean | null
  detail: string
  ms?: number
}

const PROBE_TIMEOUT_MS = 2000

/**
 * Asks the gateway something it must refuse: an empty request on a submit
 * subject. Any reply (a `bus.bad_request` error) proves a gateway is serving;
 * nothing can be written, because an empty body never passes validation.
 */
export async function probeGateway(session: Session): Promise<GatewayProbe> {
  let nc: NatsConnection
  try {
    nc = await session.nats()
  } catch (e) {
    return { alive: null, detail: (await toEventplaneError(e)).message }
  }
  const tenant = session.config.tenant ?? 'evtctl-probe'
  const subject = submitSubject(tenant, 'evtctl', 'status')
  const started = performance.now()
  try {
    // The gateway answers only replies in the tenant's own space (`_INBOX_<tenant>.`), so the probe names its own.
    await nc.request(subject, new Uint8Array(0), {
      timeout: PROBE_TIMEOUT_MS,
      noMux: true,
      reply: `${tenantInboxPrefix(tenant)}.${nuid.next()}`,
    })
    const ms = Math.round(performance.now() - started)
    return { alive: true, detail: `answered on ${subject} in ${ms} ms`, ms }
  } catch (e) {
    const typed = natsFailure(e, `probe ${subject}`)
    if (typed.code === 'bus.timeout') return { alive: false, detail: `no answer within ${PROBE_TIMEOUT_MS} ms` }
    return { alive: false, detail: typed.message }
  }
}
