import type { Command } from 'commander'
import { ROLES } from '@eventplane/store-pg'
import { type CommandKit, domainOption } from '../command-kit.ts'
import { startDomain } from '../runners.ts'
import { serve, serviceLogLevel } from '../services/serve.ts'

/** `evtctl run`: a domain's controllers and projections as a production process. */
export function registerRun(program: Command, kit: CommandKit): void {
  program
    .command('run')
    .description("run the domain's controllers and projections (production process; SIGTERM stops them cleanly)")
    .addOption(domainOption())
    .addHelpText(
      'after',
      [
        '',
        'Projections catch up from PostgreSQL as eventplane_projector, then go live from their durable',
        'consumers; controllers append facts as eventplane_fact_writer. NATS: the controller tier',
        'credentials. Several runners may run: a projection applies each event once, a controller stream',
        'is reconciled in order (docs/deploying.md).',
        '',
        'Examples:',
        '  $ evtctl run --domain @acme/domain --nats-creds /etc/eventplane/controller.creds',
      ].join('\n'),
    )
    .action(
      kit.action(async (session, cmd) => {
        serviceLogLevel(session, cmd)
        const domain = await session.domain('run')
        session.log.info(
          { ...session.describe([ROLES.projector, ROLES.factWriter]), domain: domain.name },
          'runner process starting',
        )
        const parts = await startDomain(session, domain)
        const names = parts.map((p) => p.name)
        await serve(session, parts, { domain: domain.name, runtime: names }, `${domain.name}: ${names.join(', ')}`)
      }),
    )
}
