import type { Command } from 'commander'
import type { EventKind } from '@eventplane/core'
import { tail } from '@eventplane/bus-nats'
import { eventRecord, liveLine } from '../format.ts'
import { filterOptions, logFilterFrom } from '../log-filter.ts'
import { type CommandKit, intOption, tenantOption, helpAfter } from '../command-kit.ts'
import { closedFailure } from '../services/connection-closed.ts'

interface TailOptions {
  kind?: EventKind
  category?: string
  count?: number
  showActor?: boolean
}

/** `evtctl tail`: live log events from NATS (no history) until SIGINT or `--count`. */
export function registerTail(program: Command, kit: CommandKit): void {
  const command = program
    .command('tail')
    .description('print log events live as the relay publishes them (no history), until Ctrl-C or --count')
    .addOption(tenantOption())
    .option('--count <n>', 'exit after n events', intOption('--count', 1))
    .option('--show-actor', 'include caused_by (the principal)')
  for (const option of filterOptions()) command.addOption(option)
  command
    .addHelpText(
      'after',
      helpAfter(
        'A tenant user may tail only its own tenant. History: use `read` or `subscribe`.',
        '',
        'Examples:',
        '  $ evtctl tail --tenant acme',
        '  $ evtctl tail --tenant acme --kind fact --category deployment --count 10 --json',
      ),
    )
    .action(
      kit.action<TailOptions>(async (session, _cmd, opts) => {
        const filter = logFilterFrom(session.config, opts)
        const view = { showActor: opts.showActor === true }
        const nc = await session.nats(session.config.tenant)
        const live = await tail(nc, filter, {
          ...(session.signal ? { signal: session.signal } : {}),
          logger: session.log,
        })
        session.onClose(() => live.stop())
        session.log.info({ subject: live.subject }, 'tail ready')
        let seen = 0
        for await (const event of live) {
          session.out.emit(eventRecord(event, view), () => liveLine(event, view))
          seen += 1
          if (opts.count !== undefined && seen >= opts.count) break
        }
        // An async permission error ends the loop above with a throw; here the subscription has finished closing.
        await live.closed
        // Ended by the server closing the connection (its user revoked), not by Ctrl-C or --count: say so.
        if (nc.isClosed() && seen !== opts.count && session.signal?.aborted !== true)
          throw await closedFailure(nc, 'tail', session.natsIdentity)
      }),
    )
}
