import { type BusEnv, type RequestGate, createBusEnv, startRequestGate } from '@eventplane/bus-nats/testing'
import { perSuite } from '@eventplane/store-pg/testing'
import { type CliProcess, type CliResult, killAll, startCli } from '../helpers.ts'

/** A bus (test database, nats-server of our config) and a gate holding the replies to `held` requests. */
export interface GatedBus {
  env: BusEnv
  gate: RequestGate
}

/**
 * A {@link GatedBus} for the enclosing `describe`: the bus made and the gate on `held` (a request subject prefix)
 * started before its tests; the CLI children killed, the gate closed and the bus cleaned up after them.
 */
export function useGatedBus(prefix: string, held: string): GatedBus {
  return perSuite(
    async () => {
      const env = await createBusEnv(prefix)
      try {
        return { env, gate: await startRequestGate(env.server.port, held) }
      } catch (e) {
        await env.cleanup()
        throw e
      }
    },
    async ({ env, gate }) => {
      killAll()
      await gate.close()
      await env.cleanup()
    },
  )
}

/**
 * Starts `evtctl <args>` on the example domain through the gate, as NATS user `user`, with the bus's admin
 * database URL and `moreEnv` (per-role URLs).
 */
export function startGated(
  { env, gate }: GatedBus,
  args: readonly string[],
  user: string,
  moreEnv: Record<string, string> = {},
): CliProcess {
  return startCli(args, {
    env: {
      EVENTPLANE_DATABASE_URL: env.db.url,
      EVENTPLANE_NATS_URL: gate.url,
      EVENTPLANE_NATS_CREDS: env.server.credentials[user]!.creds,
      EVENTPLANE_DOMAIN: '@eventplane/example-deployments',
      ...moreEnv,
    },
    timeoutMs: 90_000,
  })
}

/** The `evtctl: <code>: …` lines of a run's stderr (its failures; the JSON log lines are not). */
export function failureLines(r: CliResult): string[] {
  return r.stderr.split('\n').filter((l) => l.startsWith('evtctl:'))
}
