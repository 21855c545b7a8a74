import { createWriteStream } from 'node:fs'
import { once } from 'node:events'
import type { Command } from 'commander'
import { ROLES, PgEventStore, exportEvents } from '@eventplane/store-pg'
import { type CommandKit, tenantOption, helpAfter } from '../command-kit.ts'
import { requireTenant } from '../stream-arg.ts'

interface ExportOptions {
  stream?: string
  correlation?: string
  includeActor?: boolean
  output?: string
}

/** `evtctl export`: one tenant's events (or one stream or chain) as NDJSON, lineage intact, caused_by redacted unless asked. */
export function registerExport(program: Command, kit: CommandKit): void {
  program
    .command('export')
    .description('write a tenant’s events (or one stream, or one correlation chain) as NDJSON, in log order')
    .addOption(tenantOption())
    .option('--stream <category/id>', 'only this stream of the tenant')
    .option('--correlation <id>', 'only this correlation chain')
    .option('--include-actor', 'keep caused_by (a backup meant for restore); redacted by default')
    .option('--output <file>', 'write to a file instead of stdout')
    .addHelpText(
      'after',
      helpAfter(
        'Examples:',
        '  $ evtctl export --tenant acme > acme.ndjson',
        '  $ evtctl export --tenant acme --correlation 0190… --include-actor --output chain.ndjson',
      ),
    )
    .action(
      kit.action<ExportOptions>(async (session, _command, opts) => {
        const tenant = requireTenant(session.config, 'export')
        const [category, ...rest] = (opts.stream ?? '').split('/')
        const store = new PgEventStore(session.pg(ROLES.operator))
        const lines = exportEvents(store, {
          tenant,
          ...(opts.stream === undefined ? {} : { stream: { category: category ?? '', id: rest.join('/') } }),
          ...(opts.correlation === undefined ? {} : { correlationId: opts.correlation }),
          includeActor: opts.includeActor === true,
        })
        const file = opts.output === undefined ? undefined : createWriteStream(opts.output, { mode: 0o600 })
        let count = 0
        for await (const line of lines) {
          if (file) {
            if (!file.write(`${line}\n`)) await once(file, 'drain')
          } else session.io.stdout.write(`${line}\n`)
          count++
        }
        if (file)
          await new Promise<void>((resolve, reject) => file.end((e?: Error | null) => (e ? reject(e) : resolve())))
        session.log.info({ tenant, count }, 'exported events')
        if (file) session.io.stderr.write(`exported ${count} events to ${opts.output}\n`)
      }),
    )
}
