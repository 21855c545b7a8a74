import { InvalidName, validateName, validateTenant } from '@eventplane/core'
import {
  API_ROOT,
  HEADS_STREAM_NAME,
  HEADS_SUBJECTS,
  LOG_SUBJECTS,
  STREAM_NAME,
  SUBMIT_SUBJECTS,
  logFilter,
  tenantInboxPrefix,
} from '../subjects.ts'

/** A user's publish/subscribe grants; an omitted side means "everything" (within the user's account). */
export interface UserPermissions {
  publish?: { allow?: string[]; deny?: string[] }
  subscribe?: { allow?: string[]; deny?: string[] }
  /** May publish once to the reply subject of each request it received (`allow_responses`). */
  allowResponses?: boolean
}

/** The users of the log account (the system side), besides the system account's `system` user. */
export const SERVICE_USERS = ['operator', 'relay', 'gateway', 'controller'] as const
export type ServiceUser = (typeof SERVICE_USERS)[number]

const JS = '$JS.API'
const STREAM_INFO = `${JS}.STREAM.INFO.${STREAM_NAME}`
const ACCOUNT_INFO = `${JS}.INFO`
/** The request inbox of service users (nats.js default `_INBOX`). */
const SERVICE_INBOX = '_INBOX.>'

/**
 * Consumer names a tenant gets when none are given. Enumerated, because NATS
 * wildcards are whole tokens: `acme_*` would be a literal name, not a pattern.
 */
export function defaultConsumerNames(tenant: string): string[] {
  return [`${tenant}_tail`, `${tenant}_proj`, `${tenant}_ctl`]
}

/**
 * The JetStream subjects through which a tenant uses one of its consumers:
 * info, pull (`MSG.NEXT`) and acks. The same list is the tenant account's
 * imports from the log account and its user's publish grant; nothing else of
 * the JetStream API exists for a tenant.
 */
export function tenantConsumerSubjects(consumer: string): { info: string; next: string; ack: string } {
  const name = validateName('consumer', consumer)
  return {
    info: `${JS}.CONSUMER.INFO.${STREAM_NAME}.${name}`,
    next: `${JS}.CONSUMER.MSG.NEXT.${STREAM_NAME}.${name}`,
    ack: `$JS.ACK.${STREAM_NAME}.${name}.>`,
  }
}

/** `eventplane-api.submit.<tenant>.>`: the submit subjects of one tenant. */
export function tenantSubmitSubjects(tenant: string): string {
  return `${API_ROOT}.submit.${validateTenant(tenant)}.>`
}

/**
 * What a tenant's user may do inside its own account: request its submit
 * subjects, use its consumers (info, pull, ack), tail its own log subjects and
 * receive replies on `_INBOX_<tenant>`. Defense in depth only: the account
 * boundary (imports) is what isolates tenants; these grants keep a tenant
 * client from even trying anything else and make refusals explicit.
 */
export function tenantPermissions(tenant: string, consumers: readonly string[]): UserPermissions {
  const consumerSubjects = consumers.flatMap((name) => Object.values(tenantConsumerSubjects(name)))
  return {
    publish: { allow: [tenantSubmitSubjects(tenant), ...consumerSubjects] },
    subscribe: { allow: [logFilter({ tenant }), `${tenantInboxPrefix(tenant)}.>`] },
  }
}

/** The permission set of each service user of the log account (DESIGN §4), by tier. */
export function servicePermissions(): Record<ServiceUser, UserPermissions> {
  return {
    operator: {},
    relay: {
      publish: {
        allow: [
          LOG_SUBJECTS,
          STREAM_INFO,
          `${JS}.STREAM.CREATE.${STREAM_NAME}`,
          `${JS}.STREAM.UPDATE.${STREAM_NAME}`,
          // The stream's last message, read by sequence when the relay becomes active: where to resume (relay-resume.ts).
          `${JS}.STREAM.MSG.GET.${STREAM_NAME}`,
          ACCOUNT_INFO,
          // Chain heads (HeadsPublisher): publish them, create/check their stream, read a tenant's newest.
          // No purge or delete grant, and the stream denies both anyway.
          HEADS_SUBJECTS,
          `${JS}.STREAM.INFO.${HEADS_STREAM_NAME}`,
          `${JS}.STREAM.CREATE.${HEADS_STREAM_NAME}`,
          `${JS}.STREAM.UPDATE.${HEADS_STREAM_NAME}`,
          `${JS}.STREAM.MSG.GET.${HEADS_STREAM_NAME}`,
        ],
      },
      subscribe: { allow: [SERVICE_INBOX] },
    },
    gateway: {
      // No publish grant at all: `deny: >` leaves replies to requests it received
      // (allow_responses) as the only thing it can send.
      publish: { deny: ['>'] },
      subscribe: { allow: [SUBMIT_SUBJECTS, SERVICE_INBOX] },
      allowResponses: true,
    },
    controller: {
      publish: {
        allow: [
          `${JS}.CONSUMER.CREATE.${STREAM_NAME}`,
          `${JS}.CONSUMER.CREATE.${STREAM_NAME}.>`,
          `${JS}.CONSUMER.DURABLE.CREATE.${STREAM_NAME}.>`,
          `${JS}.CONSUMER.INFO.${STREAM_NAME}.>`,
          `${JS}.CONSUMER.MSG.NEXT.${STREAM_NAME}.>`,
          STREAM_INFO,
          `$JS.ACK.${STREAM_NAME}.>`,
          ACCOUNT_INFO,
        ],
      },
      subscribe: { allow: [SERVICE_INBOX] },
    },
  }
}

/**
 * Tenant names that would collide with the system side: service users, and
 * `proj`/`ctl`, whose `<tenant>_…` consumer names are the runtime's default
 * consumer names (`proj_<projection>`, `ctl_<controller>`), and `evtctl`, whose
 * `evtctl_tail` is the consumer an operator's `evtctl subscribe` without a tenant uses.
 */
export const RESERVED_TENANT_NAMES: readonly string[] = [...SERVICE_USERS, 'system', 'proj', 'ctl', 'evtctl']

/**
 * Checks a tenant name and its consumer names: naming rules, not a reserved
 * name, every consumer named `<tenant>_…` (so a tenant's import can never name
 * a system-side consumer, whose filter spans tenants), and none owned by
 * another tenant. `owners` maps consumer names to the tenant that has them.
 * Returns the consumer names to use.
 */
export function checkTenantConsumers(
  tenant: string,
  consumers: readonly string[] | undefined,
  owners: ReadonlyMap<string, string>,
): string[] {
  validateTenant(tenant)
  if (RESERVED_TENANT_NAMES.includes(tenant))
    throw new InvalidName(`tenant name ${JSON.stringify(tenant)} is reserved`, { kind: 'tenant' })
  const names = consumers === undefined || consumers.length === 0 ? defaultConsumerNames(tenant) : [...consumers]
  for (const name of names) {
    validateName('consumer', name)
    if (!name.startsWith(`${tenant}_`) || name.length === tenant.length + 1)
      throw new InvalidName(`consumer ${JSON.stringify(name)} of tenant ${tenant} must be named ${tenant}_<name>`, {
        kind: 'consumer',
      })
    const owner = owners.get(name)
    if (owner !== undefined && owner !== tenant)
      throw new InvalidName(`consumer ${JSON.stringify(name)} already belongs to tenant ${owner}`, { kind: 'consumer' })
  }
  if (new Set(names).size !== names.length)
    throw new InvalidName(`consumer names for ${tenant} are listed twice`, { kind: 'consumer' })
  return names
}
