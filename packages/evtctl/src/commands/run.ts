import type { Command } from 'commander'
import { ROLES } from '@eventplane/store-pg'
import { type CommandKit, domainOption, helpAfter } from '../command-kit.ts'
import { domainParts, runnerOps, startDomain } from '../runners.ts'
import { serve, serviceLogLevel, startingParts } from '../services/serve.ts'

/** `evtctl run`: a domain's controllers and projections as a production process. */
export function registerRun(program: Command, kit: CommandKit): void {
  program
    .command('run')
    .description("run the domain's controllers and projections (production process; SIGTERM stops them cleanly)")
    .addOption(domainOption())
    .addHelpText(
      'after',
      helpAfter(
        'Projections catch up from PostgreSQL as eventplane_projector, then go live from their durable',
        'consumers; controllers append facts as eventplane_fact_writer. NATS: the controller tier',
        'credentials. Several runners may run: a projection applies each event once, a controller stream',
        'is reconciled in order (docs/deploying.md). EVENTPLANE_OPS_PORT serves /healthz, /readyz and',
        '/metrics (docs/operating.md).',
        '',
        'Examples:',
        '  $ evtctl run --domain @acme/domain --nats-creds /etc/eventplane/controller.creds',
      ),
    )
    .action(
      kit.action(async (session, cmd) => {
        serviceLogLevel(session, cmd)
        const domain = await session.domain('run')
        session.log.info(
          { ...session.describe([ROLES.projector, ROLES.factWriter]), domain: domain.name },
          'runner process starting',
        )
        const ops = runnerOps(session)
        const parts = await startDomain(session, domain, ops.metrics, startingParts('run', domainParts(domain)))
        const roles = [
          ...(domain.projections.length > 0 ? [ROLES.projector] : []),
          ...(domain.controllers.length > 0 ? [ROLES.factWriter] : []),
        ]
        const server = await ops.serve(...roles)
        const names = parts.map((p) => p.name)
        await serve(
          session,
          parts,
          { domain: domain.name, runtime: names, ...(server ? { ops: server.url } : {}) },
          `${domain.name}: ${names.join(', ')}${server ? `, ops on ${server.url}` : ''}`,
          'run',
        )
      }),
    )
}
