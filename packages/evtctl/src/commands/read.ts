import { type Command, InvalidArgumentError } from 'commander'
import { type Checkpoint, formatCheckpoint, formatStream, parseCheckpoint } from '@eventplane/core'
import { PgEventStore, ROLES } from '@eventplane/store-pg'
import { eventCells, eventRecord, logEventCells } from '../format.ts'
import { type CommandKit, intOption, tenantOption, helpAfter } from '../command-kit.ts'
import type { Session } from '../session.ts'
import { requireTenant, resolveStreamArg } from '../stream-arg.ts'
import { CliError } from '../cli-error.ts'

interface ReadOptions {
  backward?: boolean
  from?: number
  limit?: number
  showActor?: boolean
  category?: string
  all?: boolean
  after?: Checkpoint
}

/** Events per page of `--category` and `--all` unless `--limit` says otherwise. */
export const DEFAULT_PAGE = 100

function checkpointOption(value: string): Checkpoint {
  try {
    return parseCheckpoint(value)
  } catch {
    throw new InvalidArgumentError('--after must look like <tx_id>:<position>')
  }
}

/** Refuses options that mean nothing for the chosen source, instead of ignoring them. */
function checkCombination(streamArg: string | undefined, opts: ReadOptions, tenantFlag: boolean): void {
  const sources = [streamArg !== undefined, opts.category !== undefined, opts.all === true].filter(Boolean).length
  if (sources !== 1)
    throw new CliError('cli.bad_usage', 'read takes exactly one of: a stream, --category <category>, --all')
  if (streamArg === undefined && (opts.backward || opts.from !== undefined))
    throw new CliError(
      'cli.bad_usage',
      '--backward and --from apply to a stream; page a category or the log with --after',
    )
  if (streamArg !== undefined && opts.after !== undefined)
    throw new CliError('cli.bad_usage', '--after pages --category and --all; a stream is paged with --from')
  if (opts.all && tenantFlag)
    throw new CliError('cli.bad_usage', '--all reads every tenant; for one tenant use --category or export --tenant')
}

async function readStream(session: Session, streamArg: string, opts: ReadOptions): Promise<void> {
  const ref = resolveStreamArg(streamArg, session.config, { categoryRead: true })
  const view = { showActor: opts.showActor === true }
  if (opts.limit === 0) return
  const store = new PgEventStore(session.pg(ROLES.reader))
  session.log.debug({ stream: formatStream(ref), backward: opts.backward === true }, 'reading stream')
  let count = 0
  const reading = store.readStream(ref, {
    direction: opts.backward ? 'backward' : 'forward',
    ...(opts.from === undefined ? {} : { fromVersion: opts.from }),
    ...(opts.limit === undefined ? {} : { maxCount: opts.limit }),
    ...(session.signal ? { signal: session.signal } : {}),
  })
  for await (const batch of reading) {
    session.out.rows(batch, { record: (e) => eventRecord(e, view), cells: (e) => eventCells(e, view) })
    count += batch.length
  }
  session.log.debug({ stream: formatStream(ref), count }, 'read stream')
}

/**
 * One page of a category (as the reader, RLS-scoped to the tenant) or of
 * the whole log (as the operator), in the gap-safe global order, then where
 * to continue: a page ends at a checkpoint no later transaction can precede.
 */
async function readPage(session: Session, opts: ReadOptions): Promise<void> {
  const view = { showActor: opts.showActor === true }
  const limit = opts.limit ?? DEFAULT_PAGE
  const from = opts.after ?? { txId: 0n, position: 0n }
  // One more than shown, to know whether another page follows.
  const source =
    opts.category !== undefined
      ? new PgEventStore(session.pg(ROLES.reader)).readCategory(
          requireTenant(session.config, 'read --category'),
          opts.category,
          {
            from,
            batchSize: limit + 1,
          },
        )
      : new PgEventStore(session.pg(ROLES.operator)).readAll({ from, batchSize: limit + 1 })
  const first = limit > 0 ? await source.next() : undefined
  await source.return(undefined)
  const events = first?.done === false ? first.value : []
  const more = events.length > limit
  const shown = events.slice(0, limit)
  const last = shown.at(-1)
  const next = formatCheckpoint(last ? { txId: last.tx_id, position: last.global_position } : from)
  session.out.rows(shown, { record: (e) => eventRecord(e, view), cells: (e) => logEventCells(e, view) })
  session.out.record({ next_after: next, more })
  session.out.line(
    more
      ? `next page: --after ${next}`
      : `end of the log for now (${shown.length} events); continue later with --after ${next}`,
  )
}

/** `evtctl read`: a stream (reader, RLS-scoped), a category of a tenant (reader) or the whole log (operator). */
export function registerRead(program: Command, kit: CommandKit): void {
  program
    .command('read')
    .description('print the events of one stream, of one category of a tenant (--category) or of the whole log (--all)')
    .argument('[stream]', 'tenant/category/id (or category/id with --tenant)')
    .option('--category <category>', 'the events of this category of the tenant, in log order, paged')
    .option('--all', 'the whole log, every tenant, in log order, paged (operator role)')
    .option('--after <checkpoint>', 'with --category or --all: start after this <tx_id>:<position>', checkpointOption)
    .option('--backward', 'a stream: newest first')
    .option('--from <version>', 'a stream: first version to print (last one with --backward)', intOption('--from', 1))
    .option(
      '--limit <n>',
      `print at most n events (a page of --category/--all: default ${DEFAULT_PAGE})`,
      intOption('--limit'),
    )
    .option('--show-actor', 'include caused_by (the principal) in the output')
    .addOption(tenantOption())
    .addHelpText(
      'after',
      helpAfter(
        'Output: one line per event, columns aligned; --json prints one JSON object per line.',
        '--category and --all read in the gap-safe global order and end with where to continue:',
        'a "next page: --after <checkpoint>" line, or with --json a last line {"next_after": …, "more": …}.',
        '',
        'Examples:',
        '  $ evtctl read acme/deployment/web-1',
        '  $ evtctl read deployment/web-1 --tenant acme --backward --limit 1 --json',
        '  $ evtctl read --category deployment --tenant acme --limit 50',
        '  $ evtctl read --all --after 1234:5678 --json',
      ),
    )
    .action(
      kit.action<ReadOptions>(async (session, command, opts) => {
        const streamArg = command.args[0]
        checkCombination(streamArg, opts, command.getOptionValueSource('tenant') === 'cli')
        if (streamArg !== undefined) await readStream(session, streamArg, opts)
        else await readPage(session, opts)
      }),
    )
}
