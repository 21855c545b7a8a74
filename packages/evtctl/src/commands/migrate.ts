import type { Command } from 'commander'
import { migrate, redactUrl } from '@eventplane/store-pg'
import type { CommandKit } from '../command-kit.ts'

/** `evtctl migrate`: applies the versioned SQL migrations with the admin URL. */
export function registerMigrate(program: Command, kit: CommandKit): void {
  program
    .command('migrate')
    .description('apply the pending PostgreSQL migrations (admin URL); safe to run again')
    .addHelpText(
      'after',
      '\nExamples:\n  $ EVENTPLANE_DATABASE_URL=postgres://postgres@db:5432/events evtctl migrate\n  $ evtctl migrate --json',
    )
    .action(
      kit.action(async (session) => {
        const url = session.config.databaseUrl
        session.log.info({ url: redactUrl(url) }, 'migrating')
        const result = await migrate(session.pg('admin', 1))
        session.log.info({ applied: result.applied.length, already: result.alreadyApplied.length }, 'migrated')
        session.out.emit(
          { database: redactUrl(url), applied: result.applied, already_applied: result.alreadyApplied },
          () =>
            result.applied.length === 0
              ? `${redactUrl(url)}: up to date (${result.alreadyApplied.length} migrations applied before)`
              : result.applied.map((name) => `applied ${name}`),
        )
      }),
    )
}
