import { consumerLags } from '@eventplane/bus-nats'
import { CONTROLLER_CONSUMER_PREFIX, controllerConsumerName } from '@eventplane/runtime'
import { toEventplaneError } from './exit-codes.ts'
import { sessionJetStream } from './jetstream-check.ts'
import type { Session } from './session.ts'

/** One controller as `status --json` shows it; counts are decimal strings, null when its consumer is missing. */
export interface ControllerReport {
  name: string
  /** Its durable JetStream consumer (`ctl_<name>`): a controller's lag is what that consumer has not acknowledged. */
  consumer: string
  /** False when the consumer does not exist: the controller never started, or the consumer was deleted. */
  found: boolean
  /** Named by the configured domain (`--domain` / EVENTPLANE_DOMAIN), so `--check` requires its consumer. */
  expected: boolean
  /** `pending + ack_pending`: events the controller has not reconciled yet. */
  lag: string | null
  /** Matching events not delivered yet. */
  pending: string | null
  /** Delivered and not acknowledged: being reconciled (or waiting for redelivery). */
  ack_pending: string | null
  /** Pull requests waiting at the server: > 0 means a runner is attached (0 can also be a busy runner). */
  waiting_pulls: number | null
}

/** The controllers section of `status --json` (absent with --no-nats). */
export interface ControllersReport {
  /** Why NATS could not be asked (then `list` is empty: nothing is known); null when it answered. */
  unknown: string | null
  /** The configured domain whose controllers are expected, if any. */
  domain: string | null
  list: ControllerReport[]
}

/**
 * Every controller consumer on EVENTPLANE (`ctl_*`) with its lag, plus the
 * configured domain's controllers whose consumer is missing. Uses the
 * configured NATS credentials (the operator's: listing consumers needs
 * `$JS.API.CONSUMER.LIST.EVENTPLANE`); a failure is reported, not thrown.
 */
export async function collectControllers(session: Session): Promise<ControllersReport> {
  const domain = session.config.domain === undefined ? undefined : await session.domain('status')
  const expected = new Map((domain?.controllers ?? []).map((c) => [controllerConsumerName(c.name), c.name]))
  const missing = (): ControllerReport[] =>
    [...expected].map(([consumer, name]) => ({
      name,
      consumer,
      found: false,
      expected: true,
      lag: null,
      pending: null,
      ack_pending: null,
      waiting_pulls: null,
    }))
  const report = (unknown: string | null, list: ControllerReport[]): ControllersReport => ({
    unknown,
    domain: domain?.name ?? null,
    list,
  })
  let lags: Awaited<ReturnType<typeof consumerLags>>
  try {
    const jsm = await sessionJetStream(session)
    lags = await consumerLags(jsm, CONTROLLER_CONSUMER_PREFIX)
  } catch (e) {
    return report((await toEventplaneError(e)).message, [])
  }
  const list: ControllerReport[] = lags.map((l) => {
    const expectedName = expected.get(l.name)
    expected.delete(l.name)
    return {
      name: expectedName ?? l.name.slice(CONTROLLER_CONSUMER_PREFIX.length),
      consumer: l.name,
      found: true,
      expected: expectedName !== undefined,
      lag: String(l.lag),
      pending: String(l.pending),
      ack_pending: String(l.ackPending),
      waiting_pulls: l.waitingPulls,
    }
  })
  return report(null, [...list, ...missing()])
}

/**
 * What `status --check` finds wrong with the controllers: NATS could not be
 * asked (lag unknown), a controller lags more than `maxLag` events, or a
 * controller the domain names has no consumer.
 */
export function controllerProblems(r: ControllersReport, maxLag: number): string[] {
  if (r.unknown !== null) return [`controller lag unknown: ${r.unknown}`]
  const problems: string[] = []
  for (const c of r.list) {
    if (!c.found) {
      problems.push(`controller ${c.name} has no consumer ${c.consumer} (never started, or the consumer was deleted)`)
    } else if (BigInt(c.lag ?? '0') > BigInt(maxLag)) {
      problems.push(`controller ${c.name} lags ${c.lag} events (more than ${maxLag})`)
    }
  }
  return problems
}

/** The human lines of the controllers section. */
export function controllerLines(r: ControllersReport): string[] {
  if (r.unknown !== null) return [`controllers unknown: ${r.unknown}`]
  if (r.list.length === 0) return ['controllers none yet (no ctl_* consumer)']
  return r.list.map((c) =>
    c.found
      ? `controller  ${c.name} (${c.consumer}): lag ${c.lag} (${c.pending} pending, ${c.ack_pending} unacknowledged)` +
        (c.waiting_pulls === 0 ? ', no pull waiting (is a runner attached?)' : '')
      : `controller  ${c.name}: no consumer ${c.consumer} (never started, or deleted)`,
  )
}
