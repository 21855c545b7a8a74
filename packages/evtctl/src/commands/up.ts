import type { Command } from 'commander'
import { DEFAULT_RELAY_NAME, SUBMIT_SUBJECTS } from '@eventplane/bus-nats'
import { type CommandKit, domainOption, intOption, helpAfter } from '../command-kit.ts'
import { requireJetStream } from '../jetstream-check.ts'
import { domainParts, startDomain } from '../runners.ts'
import { resolveSettings, settingOptions } from '../service-settings.ts'
import { GATEWAY_SETTINGS, startGateway } from '../services/gateway.ts'
import { RELAY_SETTINGS, startRelay } from '../services/relay.ts'
import { processOps, serveProcessOps } from '../process-ops.ts'
import { serve, serviceLogLevel, startingParts } from '../services/serve.ts'

/** The relay settings `up` takes as flags; the others come from the environment or the config file. */
const UP_RELAY_FLAGS = new Set(['relayName', 'terminateStuck'])

/**
 * `evtctl up`: the three service commands composed in one process for
 * development: `gateway`, `relay` and `run` (the domain's controllers and
 * projections), with the same settings each takes on its own.
 */
export function registerUp(program: Command, kit: CommandKit): void {
  const command = program
    .command('up')
    .description(
      "run the gateway, the relay and the domain's controllers and projections in one process (development); stops cleanly on Ctrl-C",
    )
    .addOption(domainOption())
  for (const option of settingOptions(RELAY_SETTINGS.filter((s) => UP_RELAY_FLAGS.has(s.key))))
    command.addOption(option)
  command
    .option(
      '--ops-port <port>',
      'serve /healthz, /readyz and /metrics on this loopback port, 0 for any free one (default: EVENTPLANE_OPS_PORT, else off)',
      intOption('--ops-port', 0),
    )
    .addHelpText(
      'after',
      helpAfter(
        'Prints one "ready" line on stdout once everything serves. Uses the configured NATS user for every',
        'part (an open server or the operator user); production runs `evtctl gateway`, `evtctl relay` and',
        '`evtctl run` separately, each with its own credentials (docs/deploying.md). Relay and gateway',
        'settings come from EVENTPLANE_RELAY_*, EVENTPLANE_GATEWAY_* or the config file as for those commands.',
        '',
        'Examples:',
        '  $ evtctl migrate && evtctl up --domain @eventplane/example-deployments',
        '  $ EVENTPLANE_DOMAIN=./domain.js evtctl up --log-level info',
      ),
    )
    .action(
      kit.action<{ opsPort?: number }>(async (session, cmd, opts) => {
        serviceLogLevel(session, cmd)
        const env = session.io.env
        const relaySettings = resolveSettings(RELAY_SETTINGS, 'relay', cmd, session.config, env)
        const gatewaySettings = resolveSettings(GATEWAY_SETTINGS, 'gateway', cmd, session.config, env)
        const ops = processOps(session, opts.opsPort)
        const domain = await session.domain('up')
        // Fails at once, with the fix, on a server that is down or has no JetStream (the services would wait).
        const nc = await session.nats()
        await requireJetStream(nc, session.config.natsUrl)
        const relayPart = `relay ${(relaySettings.values.relayName as string | undefined) ?? DEFAULT_RELAY_NAME}`
        const starting = startingParts('up', ['gateway', relayPart, ...domainParts(domain)])
        const gateway = await starting.start('gateway', () =>
          startGateway(session, gatewaySettings, domain.registry(), ops.metrics),
        )
        const relay = await starting.start(relayPart, () =>
          startRelay(session, relaySettings, { waitActive: true, metrics: ops.metrics }),
        )
        const runtime = await startDomain(session, domain, ops.metrics, starting)
        const server = await serveProcessOps(session, ops, {
          pg: { postgres: relay.sql },
          nc,
          relays: [relay.relay],
        })
        const ready = {
          gateway: SUBMIT_SUBJECTS,
          relay: relay.relay.name,
          relay_state: relay.relay.state,
          ...(relay.headsSigned === undefined ? {} : { heads_signed: relay.headsSigned }),
          runtime: runtime.map((p) => p.name),
          ...(server ? { ops: server.url } : {}),
        }
        const names = runtime.length ? `, ${ready.runtime.join(', ')}` : ''
        const opsNote = server ? `, ops on ${server.url}` : ''
        // Stop taking intents first, let the relay publish what was recorded, then the runtime.
        await serve(
          session,
          [gateway, relay, ...runtime],
          ready,
          `gateway on ${SUBMIT_SUBJECTS}, relay ${ready.relay} (${ready.relay_state})${names}${opsNote}`,
          'up',
        )
      }),
    )
}
