import type { Command } from 'commander'
import { ROLES, projectionRebuildProgress, readProjectionStates } from '@eventplane/store-pg'
import { isSqlProjection } from '@eventplane/runtime'
import { toJson } from '../io.ts'
import { findProjection } from '../domain.ts'
import { type CommandKit, domainOption, tenantOption, helpAfter } from '../command-kit.ts'
import { rebuildNote, rebuildReport } from '../rebuild-note.ts'
import { requireTenant } from '../stream-arg.ts'
import { CliError } from '../cli-error.ts'

/**
 * `evtctl state <projection>`: the current state a reducer projection holds for
 * one tenant, read as the reader role (RLS shows only that tenant's rows).
 */
export function registerState(program: Command, kit: CommandKit): void {
  program
    .command('state')
    .description("print a reducer projection's current state for one tenant, one line per key")
    .argument('<projection>', "projection name (one of the domain's)")
    .addOption(domainOption())
    .option('--key <key>', 'only this key (e.g. a stream id)')
    .addOption(tenantOption())
    .addHelpText(
      'after',
      helpAfter(
        'Only a complete output is served: while a rebuild (`evtctl replay`) is in progress or interrupted,',
        'this prints the previous one and a note on stderr.',
        '',
        'Examples:',
        '  $ evtctl state deployment_status --tenant acme --domain @eventplane/example-deployments',
        '  $ evtctl state audit --tenant acme --domain ./domain.js --json',
      ),
    )
    .action(
      kit.action(async (session, command) => {
        const projection = findProjection(await session.domain('state'), command.args[0]!)
        if (isSqlProjection(projection)) {
          throw new CliError('cli.bad_usage', `${projection.name} is a SQL projection: query its tables directly`)
        }
        const tenant = requireTenant(session.config, 'state')
        const key = command.opts<{ key?: string }>().key
        const reader = session.pg(ROLES.reader)
        const rows = await readProjectionStates(reader, projection.name, tenant, key)
        // Only complete output is ever served; say so when a newer one is being (or was partly) built.
        const rebuild = await projectionRebuildProgress(reader, projection.name)
        if (rebuild) {
          const note = rebuildNote(projection.name, rebuildReport(rebuild))
          session.io.stderr.write(`evtctl: note: ${note}\n`)
        }
        for (const row of rows) {
          session.out.emit(
            { projection: projection.name, tenant, key: row.key, state: row.state },
            () => `${row.key}  ${toJson(row.state)}`,
          )
        }
        if (rows.length === 0) session.out.line(`(no state for tenant ${tenant})`)
      }),
    )
}
