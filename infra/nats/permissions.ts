import { InvalidName, validateName } from '../../packages/core/src/index.ts'
import {
  API_ROOT,
  LOG_SUBJECTS,
  STREAM_NAME,
  SUBMIT_SUBJECTS,
  logFilter,
  tenantInboxPrefix,
} from '../../packages/bus-nats/src/subjects.ts'

/** A nats-server `permissions` block; an omitted side means "everything". */
export interface UserPermissions {
  publish?: { allow?: string[]; deny?: string[] }
  subscribe?: { allow?: string[]; deny?: string[] }
  /** Emits `allow_responses: true`: may publish once to the reply subject of a request it received. */
  allowResponses?: boolean
}

/** The service users every config has, besides one user per tenant. */
export const SERVICE_USERS = ['operator', 'relay', 'gateway', 'controller'] as const
export type ServiceUser = (typeof SERVICE_USERS)[number]

const JS = '$JS.API'
const STREAM_INFO = `${JS}.STREAM.INFO.${STREAM_NAME}`
const ACCOUNT_INFO = `${JS}.INFO`
/** The core request inbox of service users (nats.js default `_INBOX`). */
const SERVICE_INBOX = '_INBOX.>'

/**
 * Consumer names a tenant gets when none are listed. Enumerated, because NATS
 * wildcards are whole tokens: `acme_*` would be a literal name, not a pattern.
 */
export function defaultConsumerNames(tenant: string): string[] {
  return [`${tenant}_tail`, `${tenant}_proj`, `${tenant}_ctl`]
}

/**
 * What one tenant may do. The filtered create subject is the only way to make
 * a consumer: the server requires the body's `filter_subject` to equal the
 * subject's filter tokens, and the grant pins that filter to the tenant's own
 * `eventplane.*.<tenant>.>` (or anything narrower under it). No
 * `STREAM.INFO`: with `subjects_filter` it lists every tenant's subjects.
 */
export function tenantPermissions(tenant: string, consumers: readonly string[]): UserPermissions {
  const filter = logFilter({ tenant })
  const consumerSubjects = consumers.flatMap((name) => [
    `${JS}.CONSUMER.CREATE.${STREAM_NAME}.${name}.${filter}`,
    `${JS}.CONSUMER.INFO.${STREAM_NAME}.${name}`,
    `${JS}.CONSUMER.MSG.NEXT.${STREAM_NAME}.${name}`,
    `$JS.ACK.${STREAM_NAME}.${name}.>`,
  ])
  return {
    publish: {
      allow: [`${API_ROOT}.submit.${tenant}.>`, ACCOUNT_INFO, ...consumerSubjects],
    },
    subscribe: {
      allow: [filter, `${tenantInboxPrefix(tenant)}.>`],
      deny: [SERVICE_INBOX],
    },
  }
}

/** The permission set of each service user (DESIGN §4), by tier. */
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
          ACCOUNT_INFO,
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

export interface PermissionTableOptions {
  tenants: readonly string[]
  /** Consumer names per tenant; a tenant not listed gets {@link defaultConsumerNames}. */
  consumers?: Readonly<Record<string, readonly string[]>>
}

/**
 * Every user's permissions, after checking the inputs: tenant and consumer
 * names follow the naming rules, no tenant shadows a service user, and no
 * consumer name is listed for two tenants (the second could pull the first's
 * messages through `MSG.NEXT`).
 */
export function permissionTable(options: PermissionTableOptions): Record<string, UserPermissions> {
  const table: Record<string, UserPermissions> = { ...servicePermissions() }
  const owners = new Map<string, string>()
  for (const tenant of options.tenants) {
    validateName('tenant', tenant)
    if (Object.hasOwn(table, tenant))
      throw new InvalidName(`tenant ${JSON.stringify(tenant)} is listed twice or is a service user name`, {
        kind: 'tenant',
      })
    const consumers = options.consumers?.[tenant] ?? defaultConsumerNames(tenant)
    for (const name of consumers) {
      validateName('consumer', name)
      const owner = owners.get(name)
      if (owner !== undefined) {
        throw new InvalidName(`consumer ${JSON.stringify(name)} is listed for both ${owner} and ${tenant}`, {
          kind: 'consumer',
        })
      }
      owners.set(name, tenant)
    }
    table[tenant] = tenantPermissions(tenant, consumers)
  }
  for (const tenant of Object.keys(options.consumers ?? {})) {
    if (!options.tenants.includes(tenant))
      throw new InvalidName(`consumers are listed for unknown tenant ${JSON.stringify(tenant)}`, { kind: 'tenant' })
  }
  return table
}
