import { createReadStream } from 'node:fs'
import { createInterface } from 'node:readline'
import { Readable } from 'node:stream'
import type { Command } from 'commander'
import { EventplaneError } from '@eventplane/core'
import { ROLES, PgEventStore, importEvents } from '@eventplane/store-pg'
import type { CommandKit } from '../program.ts'

/**
 * `evtctl import <file|->`: idempotent re-ingest of an export, as the operator
 * role: ids already stored identically are skipped, ids stored with other
 * content are refused and reported (exit 2).
 */
export function registerImport(program: Command, kit: CommandKit): void {
  program
    .command('import')
    .description('re-ingest an NDJSON export; identical events already stored are skipped, different ones refused')
    .argument('<file>', 'NDJSON file, or - for stdin')
    .addHelpText(
      'after',
      [
        '',
        'Examples:',
        '  $ evtctl import acme.ndjson',
        '  $ evtctl export --tenant acme --include-actor | evtctl import -',
      ].join('\n'),
    )
    .action(
      kit.action(async (session, command) => {
        const file = command.args[0]!
        const input =
          file === '-' ? Readable.from(session.io.stdin ?? []) : createReadStream(file, { encoding: 'utf8' })
        const result = await importEvents(
          new PgEventStore(session.pg(ROLES.operator)),
          createInterface({ input, crlfDelay: Infinity }),
        )
        session.out.emit(
          result,
          () =>
            `imported ${result.imported}, skipped ${result.skipped} already stored, ${result.conflicts.length} conflicts`,
        )
        if (result.conflicts.length > 0) {
          const first = result.conflicts[0]!
          throw new EventplaneError(
            'store.idempotency_conflict',
            `${result.conflicts.length} events differ from the stored ones (first: ${first.eventId} on line ${first.line}); nothing was written for them`,
          )
        }
      }),
    )
}
