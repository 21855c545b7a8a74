import type { Command } from 'commander'
import { SUBMIT_SUBJECTS } from '@eventplane/bus-nats'
import { type CommandKit, domainOption } from '../command-kit.ts'
import { requireJetStream } from '../jetstream-check.ts'
import { startDomain } from '../runners.ts'
import { resolveSettings, settingOptions } from '../service-settings.ts'
import { GATEWAY_SETTINGS, startGateway } from '../services/gateway.ts'
import { RELAY_SETTINGS, startRelay } from '../services/relay.ts'
import { serve, serviceLogLevel } from '../services/serve.ts'

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
    .addHelpText(
      'after',
      [
        '',
        'Prints one "ready" line on stdout once everything serves. Uses the configured NATS user for every',
        'part (an open server or the operator user); production runs `evtctl gateway`, `evtctl relay` and',
        '`evtctl run` separately, each with its own credentials (docs/deploying.md). Relay and gateway',
        'settings come from EVENTPLANE_RELAY_*, EVENTPLANE_GATEWAY_* or the config file as for those commands.',
        '',
        'Examples:',
        '  $ evtctl migrate && evtctl up --domain @eventplane/example-deployments',
        '  $ EVENTPLANE_DOMAIN=./domain.js evtctl up --log-level info',
      ].join('\n'),
    )
    .action(
      kit.action(async (session, cmd) => {
        serviceLogLevel(session, cmd)
        const env = session.io.env
        const relaySettings = resolveSettings(RELAY_SETTINGS, 'relay', cmd, session.config, env)
        const gatewaySettings = resolveSettings(GATEWAY_SETTINGS, 'gateway', cmd, session.config, env)
        const domain = await session.domain('up')
        // Fails at once, with the fix, on a server that is down or has no JetStream (the services would wait).
        await requireJetStream(await session.nats(), session.config.natsUrl)
        const gateway = await startGateway(session, gatewaySettings, domain.registry())
        const relay = await startRelay(session, relaySettings, { waitActive: true })
        const runtime = await startDomain(session, domain)
        const ready = {
          gateway: SUBMIT_SUBJECTS,
          relay: relay.relay.name,
          relay_state: relay.relay.state,
          runtime: runtime.map((p) => p.name),
        }
        const names = runtime.length ? `, ${ready.runtime.join(', ')}` : ''
        // Stop taking intents first, let the relay publish what was recorded, then the runtime.
        await serve(
          session,
          [gateway, relay, ...runtime],
          ready,
          `gateway on ${SUBMIT_SUBJECTS}, relay ${ready.relay} (${ready.relay_state})${names}`,
        )
      }),
    )
}
