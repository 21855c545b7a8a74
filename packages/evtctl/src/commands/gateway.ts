import type { Command } from 'commander'
import { SUBMIT_SUBJECTS } from '@eventplane/bus-nats'
import { ROLES } from '@eventplane/store-pg'
import { type CommandKit, domainOption, helpAfter } from '../command-kit.ts'
import { resolveSettings, settingOptions } from '../service-settings.ts'
import { GATEWAY_SETTINGS, gatewayLimits, startGateway } from '../services/gateway.ts'
import { processOps, serveProcessOps } from '../process-ops.ts'
import { serve, serviceLogLevel } from '../services/serve.ts'

/** `evtctl gateway`: the intent gateway as a production process, validating against the domain's schemas. */
export function registerGateway(program: Command, kit: CommandKit): void {
  const command = program
    .command('gateway')
    .description(
      "run the intent gateway: validate intents against the domain's schemas and record them (production process; SIGTERM drains it)",
    )
    .addOption(domainOption())
  for (const option of settingOptions(GATEWAY_SETTINGS)) command.addOption(option)
  command
    .addHelpText(
      'after',
      helpAfter(
        'Connects to PostgreSQL as eventplane_intent_writer (EVENTPLANE_DATABASE_URL_INTENT_WRITER, or',
        'EVENTPLANE_DATABASE_URL naming that role, or derived from it) and to NATS with the gateway tier',
        'credentials. Run as many as the load needs: they share the queue group. On SIGTERM it stops taking',
        'requests and answers the ones it holds. Settings: flag > env > config file "gateway" object > default.',
        'EVENTPLANE_OPS_PORT serves /healthz, /readyz and /metrics (docs/operating.md).',
        '',
        'Examples:',
        '  $ evtctl gateway --domain @acme/domain --nats-creds /etc/eventplane/gateway.creds',
        '  $ evtctl gateway --domain ./domain.js --rate 500 --tenant-limits \'{"acme":{"ratePerSecond":2000}}\'',
      ),
    )
    .action(
      kit.action(async (session, cmd) => {
        serviceLogLevel(session, cmd)
        const settings = resolveSettings(GATEWAY_SETTINGS, 'gateway', cmd, session.config, session.io.env)
        const limits = gatewayLimits(settings)
        const domain = await session.domain('gateway')
        session.log.info(
          { ...session.describe([ROLES.intentWriter]), domain: domain.name, limits, settings: settings.sources },
          'gateway process starting',
        )
        const ops = processOps(session)
        const gateway = await startGateway(session, settings, domain.registry(), ops.metrics)
        const server = await serveProcessOps(session, ops, { pg: { postgres: gateway.sql }, nc: gateway.nc })
        await serve(
          session,
          [gateway],
          { gateway: SUBMIT_SUBJECTS, domain: domain.name, ...(server ? { ops: server.url } : {}) },
          `gateway on ${SUBMIT_SUBJECTS}${server ? `, ops on ${server.url}` : ''}`,
        )
      }),
    )
}
