import { createReadStream } from 'node:fs'
import { createInterface } from 'node:readline'
import { Readable } from 'node:stream'
import type { Command } from 'commander'
import { EventplaneError } from '@eventplane/core'
import { ROLES, PgEventStore, checkImportChain, confirmImportedHashes, importEvents } from '@eventplane/store-pg'
import { type ImportCount, type ImportPolicy, planImport, recheckedLines } from '../import-plan.ts'
import { type CommandKit, helpAfter } from '../command-kit.ts'
import type { Session } from '../session.ts'
import { alignRows } from '../table.ts'
import { stylesFor } from '../colors.ts'
import { CliError } from '../cli-error.ts'

interface ImportOptions {
  allowFacts?: boolean
  dryRun?: boolean
  rehash?: boolean
}

const REHASH_WARNING =
  'evtctl: WARNING: --rehash: the file’s hash chain is NOT checked; the imported events get new hashes from ' +
  'this database, which prove nothing about the history before the import\n'

/**
 * The file's lines, once per call: a file is opened again for the second
 * pass; stdin can be read only once, so its lines are kept in memory.
 */
function lineSource(session: Session, file: string): () => AsyncIterable<string> | Iterable<string> {
  if (file !== '-')
    return () => createInterface({ input: createReadStream(file, { encoding: 'utf8' }), crlfDelay: Infinity })
  let buffered: string[] | undefined
  return () => {
    if (buffered) return buffered
    return (async function* () {
      const lines: string[] = []
      const input = Readable.from(session.io.stdin ?? [])
      for await (const line of createInterface({ input, crlfDelay: Infinity })) {
        lines.push(line)
        yield line
      }
      buffered = lines
    })()
  }
}

function countRows(session: Session, counts: readonly ImportCount[]): string[] {
  const [header, ...rows] = alignRows([
    ['tenant', 'kind', 'events'],
    ...counts.map((c) => [c.tenant, c.kind, String(c.events)]),
  ])
  return [stylesFor(session.io.stdout, session.io.env).bold(header!), ...rows]
}

/**
 * `evtctl import <file|-> --tenant t`: idempotent re-ingest of one tenant's
 * export, as the operator role. The whole file is checked first (every line
 * an envelope of `--tenant`, intents only unless `--allow-facts`), so a
 * refused line means nothing is written; then ids already stored identically
 * are skipped, ids stored with other content are refused and reported (exit 2).
 */
export function registerImport(program: Command, kit: CommandKit): void {
  program
    .command('import')
    .description(
      're-ingest one tenant’s NDJSON export; identical events already stored are skipped, different ones refused',
    )
    .argument('<file>', 'NDJSON file, or - for stdin')
    .option(
      '--tenant <tenant>',
      'the tenant whose events the file holds (required, as this flag: EVENTPLANE_TENANT and the config file do not count)',
    )
    .option('--allow-facts', 'also import facts and internal events (a controller’s record); refused by default')
    .option('--dry-run', 'check the file and print its counts per tenant and kind; write nothing')
    .option(
      '--rehash',
      'import a file whose hash chain does not verify (an export from before the chain, a masked caused_by): ' +
        'its events get new hashes',
    )
    .addHelpText(
      'after',
      helpAfter(
        'The whole file is checked before anything is written: a line of another tenant, a fact or internal',
        'event without --allow-facts, or a malformed line stops the import with nothing written. The counts',
        'per tenant and kind are printed in both a dry run and a real run.',
        '',
        'Each line carries its event’s hash: the file’s chains are recomputed first (from the database’s',
        'stored predecessor for a stream the file does not start), and a line that does not match stops the',
        'import with nothing written (exit 2); after the import, the hashes the database stored must be the',
        'file’s. A masked export (no --include-actor) cannot keep its hashes: export it again with',
        '--include-actor, or import it with --rehash (new hashes: heads saved before no longer match them).',
        '',
        'Examples:',
        '  $ evtctl import acme.ndjson --tenant acme --dry-run',
        '  $ evtctl export --tenant acme --include-actor | evtctl import - --tenant acme --allow-facts',
      ),
    )
    .action(
      kit.action<ImportOptions>(async (session, command, opts) => {
        if (session.config.sources.tenant !== 'flag' || session.config.tenant === undefined)
          throw new CliError('cli.bad_usage', 'import needs --tenant: the tenant whose events the file holds')
        const policy: ImportPolicy = { tenant: session.config.tenant, allowFacts: opts.allowFacts === true }
        const lines = lineSource(session, command.args[0]!)
        const counts = await planImport(lines(), policy)
        const operator = session.pg(ROLES.operator)
        if (opts.rehash) session.io.stderr.write(REHASH_WARNING)
        else await checkImportChain(operator, lines())
        const total = counts.reduce((n, c) => n + c.events, 0)
        session.log.info({ tenant: policy.tenant, events: total, dryRun: opts.dryRun === true }, 'import checked')
        if (opts.dryRun) {
          session.out.emit({ dry_run: true, counts }, () => [
            ...countRows(session, counts),
            `dry run: ${total} events checked, nothing written`,
          ])
          return
        }
        const result = await importEvents(new PgEventStore(operator), recheckedLines(lines(), policy))
        if (!opts.rehash && result.conflicts.length === 0) await confirmImportedHashes(operator, policy.tenant, lines())
        session.out.emit({ ...result, counts }, () => [
          ...countRows(session, counts),
          `imported ${result.imported}, skipped ${result.skipped} already stored, ${result.conflicts.length} conflicts`,
        ])
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
