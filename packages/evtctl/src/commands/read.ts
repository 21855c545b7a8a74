import type { Command } from 'commander'
import { formatStream } from '@eventplane/core'
import { PgEventStore, ROLES } from '@eventplane/store-pg'
import { eventLine, eventRecord } from '../format.ts'
import { type CommandKit, intOption, tenantOption } from '../program.ts'
import { resolveStreamArg } from '../stream-arg.ts'

interface ReadOptions {
  backward?: boolean
  from?: number
  limit?: number
  showActor?: boolean
}

/** `evtctl read <stream>`: a stream's events as the reader role sees them (RLS-scoped to the stream's tenant). */
export function registerRead(program: Command, kit: CommandKit): void {
  program
    .command('read')
    .description('print the events of one stream, oldest first (or newest first with --backward)')
    .argument('<stream>', 'tenant/category/id (or category/id with --tenant)')
    .option('--backward', 'newest first')
    .option('--from <version>', 'first stream version to print (last one with --backward)', intOption('--from', 1))
    .option('--limit <n>', 'print at most n events', intOption('--limit'))
    .option('--show-actor', 'include caused_by (the principal) in the output')
    .addOption(tenantOption())
    .addHelpText(
      'after',
      [
        '',
        'Output: one line per event (version, position, kind, type, time, id, data); --json prints one JSON object per line.',
        '',
        'Examples:',
        '  $ evtctl read acme/deployment/web-1',
        '  $ evtctl read deployment/web-1 --tenant acme --backward --limit 1 --json',
      ].join('\n'),
    )
    .action(
      kit.action(async (session, command) => {
        const opts = command.opts<ReadOptions>()
        const ref = resolveStreamArg(command.args[0]!, session.config)
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
          for (const event of batch) session.out.emit(eventRecord(event, view), () => eventLine(event, view))
          count += batch.length
        }
        session.log.debug({ stream: formatStream(ref), count }, 'read stream')
      }),
    )
}
