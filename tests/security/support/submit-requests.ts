/**
 * Turns a fuzz plan into the bytes of one submit request. Ids are fresh per
 * execution (EventFactory), and every data value carries a marker string, so
 * the log check can look for it.
 */
import { randomBytes, randomUUID } from 'node:crypto'
import { EventFactory } from '@eventplane/core'
import type { DataPlan, Mutation, SubjectPlan, SubmitPlan, VersionPlan } from './submit-arbitraries.ts'
import type { StoreTarget, SubmitRequestModel } from './submit-oracle.ts'

export interface FuzzRequest extends SubmitRequestModel {
  /** The header value as sent; `principal` is what the gateway reads after nats.js trims it. */
  header: string | undefined
}

/** A request the gateway accepted: resent later as is, or with one thing changed. */
export interface AcceptedRequest {
  subject: string
  event: Record<string, unknown>
  header: string | undefined
  target: StoreTarget
}

export interface FuzzContext {
  accepted: AcceptedRequest[]
  /** Every marker put in a data value; none may ever show up in the gateway's log. */
  valueMarkers: string[]
  /** Markers used as data keys. */
  keyMarkers: string[]
  currentVersion(target: StoreTarget): Promise<number>
}

const factory = EventFactory.forTenant('acme', { causedBy: 'user:fuzz' })
const encoder = new TextEncoder()

function newMarker(list: string[], kind: 'v' | 'k'): string {
  const marker = `mk${kind}${list.length}q${randomBytes(4).toString('hex')}`
  list.push(marker)
  return marker
}

function ownProperties(entries: Array<[string, unknown]>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [k, value] of entries)
    Object.defineProperty(out, k, { value, enumerable: true, writable: true, configurable: true })
  return out
}

function buildData(plan: DataPlan, ctx: FuzzContext): unknown {
  const v = (): string => newMarker(ctx.valueMarkers, 'v')
  switch (plan.kind) {
    case 'json':
      return { ...plan.value, secret: v() }
    case 'unicode':
      return ownProperties([
        [plan.key, `${plan.text}${v()}`],
        ['note', `${v()} ${plan.text}`],
      ])
    case 'nul':
      if (plan.where === 'value') return { secret: `${v()}\u0000${v()}` }
      if (plan.where === 'key') return { 'k\u0000ey': v() }
      return { outer: { list: [v(), `\u0000${v()}`] } }
    case 'lone_surrogate':
      return { secret: `${v()}${plan.unit}${v()}` }
    case 'deep': {
      let value: unknown = v()
      for (let i = 0; i < plan.depth; i++) value = plan.arrays ? [value] : { d: value }
      return { root: value }
    }
    case 'huge': {
      const filler =
        plan.unit === 'ascii'
          ? 'x'.repeat(plan.bytes)
          : plan.unit === 'emoji'
            ? '😀'.repeat(Math.ceil(plan.bytes / 4))
            : '"'.repeat(Math.ceil(plan.bytes / 2))
      return { secret: `${v()}${filler}${v()}` }
    }
    case 'not_object':
      return typeof plan.value === 'string' ? `${plan.value}${v()}` : plan.value
    case 'odd_keys':
      return ownProperties(['__proto__', 'constructor', 'toString', '', 'a.b', '$where', '*', '>'].map((k) => [k, v()]))
    case 'marked_key_over_bad_value':
      return { [newMarker(ctx.keyMarkers, 'k')]: { inner: `\u0000${v()}` } }
  }
}

function mutate(event: Record<string, unknown>, m: Mutation, ctx: FuzzContext): unknown {
  const stream = event.stream as Record<string, unknown>
  switch (m.field) {
    case 'none':
      return event
    case 'lineage': {
      const candidates =
        m.parent === 'other_tenant' ? ctx.accepted.filter((a) => a.target.tenant !== event.tenant_id) : ctx.accepted
      const parent = candidates[m.pick % Math.max(1, candidates.length)]?.event
      // Nothing accepted yet: a cause that exists nowhere.
      if (parent === undefined) return { ...event, causation_id: randomUUID() }
      const correlation = m.parent === 'other_chain' ? randomUUID() : parent.correlation_id
      return { ...event, causation_id: parent.event_id, correlation_id: correlation }
    }
    case 'category':
    case 'id':
      return { ...event, stream: { ...stream, [m.field]: m.value } }
    case 'event_id':
    case 'correlation_id':
    case 'causation_id':
      return {
        ...event,
        [m.field]: m.value === 'fresh_uuid' ? randomUUID() : m.value === 'self' ? event.event_id : m.value,
      }
    case 'missing': {
      const { [m.key]: _dropped, ...rest } = event
      return rest
    }
    case 'extra':
      return { ...event, ...ownProperties([[m.key, m.value]]) }
    case 'stream_extra':
      return { ...event, stream: { ...stream, ...ownProperties([[m.key, m.value]]) } }
    case 'stream':
      return { ...event, stream: m.value }
    case 'event':
      return m.value
    default:
      return { ...event, [m.field]: m.value }
  }
}

function subjectOf(
  plan: Pick<SubjectPlan, 'tenant' | 'category' | 'id'>,
  shape: SubjectPlan['shape'] = 'exact',
): string {
  const base = `eventplane-api.submit.${plan.tenant}.${plan.category}`
  return shape === 'missing_token' ? base : shape === 'extra_token' ? `${base}.${plan.id}.extra` : `${base}.${plan.id}`
}

async function versionValue(plan: VersionPlan, target: StoreTarget, ctx: FuzzContext): Promise<unknown> {
  switch (plan.kind) {
    case 'omit':
      return undefined
    case 'any':
    case 'no_stream':
      return plan.kind
    case 'current':
      return ctx.currentVersion(target)
    case 'ahead':
      return (await ctx.currentVersion(target)) + plan.by
    case 'invalid':
      return plan.value
  }
}

const request = (subject: string, body: unknown, header: string | undefined): FuzzRequest => ({
  subject,
  body: body instanceof Uint8Array ? body : encoder.encode(JSON.stringify(body)),
  header,
  principal: header?.trim(),
})

/** A plain valid envelope for the subject's names, with marked data. */
function freshEvent(subject: SubjectPlan, data: unknown): Record<string, unknown> {
  const base = factory.intent({ category: 'c', id: 'i' }, 'fuzzed', {})
  return { ...base, tenant_id: subject.tenant, stream: { category: subject.category, id: subject.id }, data }
}

function resend(plan: SubmitPlan & { body: { kind: 'resend' } }, ctx: FuzzContext): FuzzRequest | undefined {
  if (ctx.accepted.length === 0) return undefined
  const prev = ctx.accepted[plan.body.pick % ctx.accepted.length]!
  const event = prev.event
  switch (plan.body.variant) {
    case 'identical':
      return request(prev.subject, { event }, prev.header)
    case 'changed_data':
      return request(
        prev.subject,
        { event: { ...event, data: { ...(event.data as object), changed: newMarker(ctx.valueMarkers, 'v') } } },
        prev.header,
      )
    case 'changed_principal': {
      const was = prev.header?.trim() ?? ''
      return request(prev.subject, { event }, was === '' || was.length >= 120 ? 'user:someone-else' : `${was}x`)
    }
    case 'other_stream': {
      const id = prev.target.id === 'resend-other' ? 'resend-other-2' : 'resend-other'
      return request(
        subjectOf({ ...prev.target, id }),
        { event: { ...event, stream: { category: prev.target.category, id } } },
        prev.header,
      )
    }
    case 'other_tenant': {
      const tenant = prev.target.tenant === 'globex' ? 'acme' : 'globex'
      return request(subjectOf({ ...prev.target, tenant }), { event: { ...event, tenant_id: tenant } }, prev.header)
    }
  }
}

/** The request a plan describes; a resend with nothing accepted yet falls back to a plain valid intent. */
export async function materialize(plan: SubmitPlan, ctx: FuzzContext): Promise<FuzzRequest> {
  const subject = subjectOf(plan.subject, plan.subject.shape)
  const body = plan.body
  switch (body.kind) {
    case 'bytes':
      return request(subject, body.bytes, plan.principal)
    case 'filler':
      return request(subject, new Uint8Array(body.size).fill(body.byte), plan.principal)
    case 'json':
      return request(subject, body.value ?? null, plan.principal)
    case 'resend': {
      const again = resend({ ...plan, body }, ctx)
      if (again !== undefined) return again
      return request(
        subject,
        { event: freshEvent(plan.subject, { secret: newMarker(ctx.valueMarkers, 'v') }) },
        plan.principal,
      )
    }
    case 'envelope': {
      const event = mutate(freshEvent(plan.subject, buildData(body.data, ctx)), body.mutation, ctx)
      const expectedVersion = await versionValue(body.version, plan.subject, ctx)
      const payload = {
        event,
        ...(expectedVersion === undefined ? {} : { expectedVersion }),
        ...(body.extraField === undefined ? {} : ownProperties([[body.extraField, 1]])),
      }
      return request(subject, payload, plan.principal)
    }
  }
}
