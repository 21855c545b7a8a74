import { fileURLToPath } from 'node:url'
import { ROLES } from '@eventplane/store-pg'
import { type BusEnv, type ServiceProcess, spawnServiceProcess } from '../../../packages/bus-nats/test/fixtures.ts'

/**
 * evtctl's entry point: the relay and gateway run as `evtctl relay` and `evtctl gateway`, as in production. In the
 * whole suite that is the bundle of the same sources scripts/test.sh builds (EVTCTL_TEST_BIN, as the CLI tests run:
 * about 1 s of CPU less per start than main.ts through tsx); run alone, a test file uses main.ts through tsx.
 */
const EVTCTL =
  process.env.EVTCTL_TEST_BIN || fileURLToPath(new URL('../../../packages/evtctl/src/main.ts', import.meta.url))
/** The domain whose schemas the gateways validate against. */
export const FAULT_DOMAIN = fileURLToPath(new URL('./fault-domain.js', import.meta.url))

export type ServiceKind = 'relay' | 'gateway'

/** A relay or gateway running as a child process (`evtctl relay|gateway`), so a test can SIGKILL it. */
export interface ServiceChild extends ServiceProcess {
  kind: ServiceKind
}

/** What each service reads from the environment: its role's URL and its tier's NATS creds. */
function serviceEnv(env: BusEnv, kind: ServiceKind): Record<string, string> {
  const creds = env.server.credentials[kind]!
  const role = kind === 'relay' ? ROLES.relay : ROLES.intentWriter
  return {
    EVENTPLANE_DATABASE_URL: env.db.roleUrl(role),
    EVENTPLANE_NATS_URL: env.server.url,
    EVENTPLANE_NATS_CREDS: creds.creds,
    ...(kind === 'relay' ? { EVENTPLANE_RELAY_POLL_MS: '200' } : { EVENTPLANE_DOMAIN: FAULT_DOMAIN }),
  }
}

/**
 * Runs `evtctl <kind>` with `env` only (plus PATH), its JSON logs read from
 * stderr (the ready line goes to stdout).
 */
export function spawnEvtctlService(kind: ServiceKind, label: string, env: Record<string, string>): ServiceProcess {
  return spawnEvtctl([kind], label, env)
}

/** Runs `evtctl <args>` (a long-running command: `up`, a service) as {@link spawnEvtctlService} does. */
export function spawnEvtctl(args: readonly string[], label: string, env: Record<string, string>): ServiceProcess {
  return spawnServiceProcess(EVTCTL, label, env, { args, logStream: 'stderr' })
}

/** Spawns `evtctl <kind>` against the test database and nats-server; `extraEnv` tunes it (EVENTPLANE_RELAY_*). */
export function spawnService(env: BusEnv, kind: ServiceKind, extraEnv: Record<string, string> = {}): ServiceChild {
  return { kind, ...spawnEvtctlService(kind, kind, { ...serviceEnv(env, kind), ...extraEnv }) }
}

/** Spawns `evtctl relay` named `name` (relays of one name take turns). */
export function spawnRelay(env: BusEnv, name: string, extraEnv: Record<string, string> = {}): ServiceChild {
  return {
    kind: 'relay',
    ...spawnEvtctlService('relay', `relay ${name}`, {
      ...serviceEnv(env, 'relay'),
      EVENTPLANE_RELAY_NAME: name,
      ...extraEnv,
    }),
  }
}
