import { type Command, InvalidArgumentError } from 'commander'
import { formatStream, validateCategory, validateStreamId } from '@eventplane/core'
import { PgEventStore, ROLES, type StreamSummary } from '@eventplane/store-pg'
import { type CommandKit, intOption, tenantOption, helpAfter } from '../command-kit.ts'
import { requireTenant } from '../stream-arg.ts'

/** Streams per page unless `--limit` says otherwise. */
export const DEFAULT_STREAMS_PAGE = 100

interface StreamsOptions {
  category?: string
  after?: { category: string; id: string }
  limit: number
}

function afterOption(value: string): { category: string; id: string } {
  const [category, ...rest] = value.split('/')
  try {
    return { category: validateCategory(category), id: validateStreamId(rest.join('/')) }
  } catch {
    throw new InvalidArgumentError('--after must be category/id: the last stream of the previous page')
  }
}

/** `evtctl streams --tenant t`: one tenant's streams with their versions, paged (reader role, RLS-scoped). */
export function registerStreams(program: Command, kit: CommandKit): void {
  program
    .command('streams')
    .description('list a tenant’s streams with their version (event count), last type and time, paged')
    .addOption(tenantOption())
    .option('--category <category>', 'only streams of this category')
    .option('--after <category/id>', 'start after this stream (what the previous page said)', afterOption)
    .option('--limit <n>', 'at most n streams', intOption('--limit', 1), DEFAULT_STREAMS_PAGE)
    .addHelpText(
      'after',
      helpAfter(
        'Streams come in (category, id) order. When more follow, the last line says where to continue:',
        '"next page: --after <category/id>"; with --json the last line is {"next_after": …, "more": …}.',
        '',
        'Examples:',
        '  $ evtctl streams --tenant acme',
        '  $ evtctl streams --tenant acme --category deployment --limit 20 --after deployment/web-19 --json',
      ),
    )
    .action(
      kit.action(async (session, command) => {
        const tenant = requireTenant(session.config, 'streams')
        const opts = command.opts<StreamsOptions>()
        const store = new PgEventStore(session.pg(ROLES.reader))
        const found = await store.listStreams(tenant, {
          limit: opts.limit + 1,
          ...(opts.category === undefined ? {} : { category: opts.category }),
          ...(opts.after === undefined ? {} : { after: opts.after }),
        })
        const more = found.length > opts.limit
        const page = found.slice(0, opts.limit)
        session.log.debug({ tenant, count: page.length, more }, 'listed streams')
        session.out.rows(page, {
          header: ['stream', 'version', 'last type', 'last recorded'],
          record: (s: StreamSummary) => ({
            tenant_id: s.stream.tenant,
            stream: { category: s.stream.category, id: s.stream.id },
            version: s.version,
            last_type: s.lastType,
            last_recorded_at: s.lastRecordedAt,
          }),
          cells: (s) => [formatStream(s.stream), String(s.version), s.lastType, s.lastRecordedAt],
        })
        const last = page.at(-1)
        const next = last ? `${last.stream.category}/${last.stream.id}` : null
        session.out.record({ next_after: next, more })
        if (more) session.out.line(`next page: --after ${next}`)
        else if (page.length === 0) session.out.line(`no streams in tenant ${tenant}`)
      }),
    )
}
