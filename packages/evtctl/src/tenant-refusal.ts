import { SERVICE_USERS, SYSTEM_USER } from '@eventplane/bus-nats/nats-config'
import { Forbidden, type ValidStreamRef, formatStream } from '@eventplane/core'
import type { EvtctlError } from './cli-error.ts'

/**
 * The `bus.forbidden` (`typed`; `Session.rootCause` passes no other code) of a command that acted for a tenant
 * (`actingFor`: publish's stream, tail's and subscribe's tenant) with the creds of another tenant's user (`user`, the
 * creds' name: a tenant user is named by its tenant): one line saying what was refused and why, instead of the
 * server's violation (which names the reply inbox the command subscribed to, not what the user asked). Undefined for
 * anything else: a refusal within the creds' own tenant, a service user's, or one whose user is unknown keeps its
 * own line.
 */
export function crossTenantRefusal(
  typed: EvtctlError,
  command: string,
  actingFor: string | ValidStreamRef,
  user: string | undefined,
): Forbidden | undefined {
  if (user === undefined) return undefined
  const tenant = typeof actingFor === 'string' ? actingFor : actingFor.tenant
  const services: readonly string[] = [...SERVICE_USERS, SYSTEM_USER]
  if (user === tenant || services.includes(user)) return undefined
  const what =
    typeof actingFor === 'string' ? `${command} for tenant ${tenant}` : `${command} to ${formatStream(actingFor)}`
  return new Forbidden(
    'bus.forbidden',
    `${what} refused: the NATS creds are user ${user}'s, and a tenant's creds cover only its own streams ` +
      `(tenant ${tenant}'s creds: <auth-dir>/tenants/${tenant}.creds, written by evtctl tenant add ${tenant})`,
    { cause: typed },
  )
}
