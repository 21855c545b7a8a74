import type { Command } from 'commander'
import { ROLES } from '@eventplane/store-pg'
import { type CommandKit, helpAfter } from '../command-kit.ts'
import { resolveSettings, settingOptions } from '../service-settings.ts'
import { RELAY_SETTINGS, startRelay } from '../services/relay.ts'
import { processOps, serveProcessOps } from '../process-ops.ts'
import { serve, serviceLogLevel } from '../services/serve.ts'

/** `evtctl relay`: the relay as a production process (one active per name; more stand by). */
export function registerRelay(program: Command, kit: CommandKit): void {
  const command = program
    .command('relay')
    .description(
      'run the relay: publish the PostgreSQL log to JetStream in its order (production process; SIGTERM stops it cleanly)',
    )
  for (const option of settingOptions(RELAY_SETTINGS)) command.addOption(option)
  command
    .addHelpText(
      'after',
      helpAfter(
        'Connects to PostgreSQL as eventplane_relay (EVENTPLANE_DATABASE_URL_RELAY, or EVENTPLANE_DATABASE_URL',
        'naming that role, or derived from it) and to NATS with the relay tier credentials (--nats-creds).',
        'Run two or more of one name: one holds the lease, the others stand by and take over. Waits for',
        'servers that are not up yet. Settings: flag > env > config file "relay" object > default.',
        'EVENTPLANE_OPS_PORT serves /healthz, /readyz and /metrics (docs/operating.md).',
        '',
        'Examples:',
        '  $ EVENTPLANE_NATS_CREDS=/etc/eventplane/relay.creds evtctl relay',
        '  $ evtctl relay --config /etc/eventplane/relay.json --relay-name main --terminate-stuck',
      ),
    )
    .action(
      kit.action(async (session, cmd) => {
        serviceLogLevel(session, cmd)
        const settings = resolveSettings(RELAY_SETTINGS, 'relay', cmd, session.config, session.io.env)
        session.log.info({ ...session.describe([ROLES.relay]), settings: settings.sources }, 'relay process starting')
        const ops = processOps(session)
        const relay = await startRelay(session, settings, { waitActive: false, metrics: ops.metrics })
        const server = await serveProcessOps(session, ops, {
          pg: { postgres: relay.sql },
          nc: relay.nc,
          relays: [relay.relay],
        })
        await serve(
          session,
          [relay],
          {
            relay: relay.relay.name,
            ...(relay.headsSigned === undefined ? {} : { heads_signed: relay.headsSigned }),
            ...(server ? { ops: server.url } : {}),
          },
          `relay ${relay.relay.name}${server ? `, ops on ${server.url}` : ''}`,
        )
      }),
    )
}
