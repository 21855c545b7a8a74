import { readFile, writeFile } from 'node:fs/promises'
import type { Command } from 'commander'
import { ensureHeadsStream, headsSubject, publishTenantHeads } from '@eventplane/bus-nats'
import { EventplaneError } from '@eventplane/core'
import { jetstream, jetstreamManager } from '@nats-io/jetstream'
import { ROLES, headsToFile, keyFingerprint, readHeads, signHeads } from '@eventplane/store-pg'
import { CliError } from '../cli-error.ts'
import { type CommandKit, tenantOption, helpAfter } from '../command-kit.ts'
import { requireTenant } from '../stream-arg.ts'

interface HeadsOptions {
  signKey?: string
  output?: string
  publish?: boolean
  force?: boolean
}

/**
 * `evtctl heads --tenant t [--sign-key file] [--output file]`: the tenant's
 * stream heads and their digest at its newest point of the global order,
 * optionally signed (Ed25519): the anchor `evtctl verify --against` checks
 * the log with. Keep a copy outside the database: a file, or `--publish` to
 * JetStream's `EVENTPLANE_HEADS` stream (what `evtctl relay --heads-every-ms`
 * does periodically).
 */
export function registerHeads(program: Command, kit: CommandKit): void {
  program
    .command('heads')
    .description('print a tenant’s stream heads and one digest over them, at a point of the global order')
    .addOption(tenantOption())
    .option('--sign-key <file>', 'Ed25519 private key (PEM, e.g. openssl genpkey -algorithm ed25519) to sign them')
    .option('--output <file>', 'write the heads file (JSON) there; with --json it is also printed')
    .option('--publish', 'also publish them on eventplane-heads.<tenant> (JetStream stream EVENTPLANE_HEADS)')
    .option('--force', 'publish even if the log no longer extends the newest published heads (re-anchor; loud)')
    .addHelpText(
      'after',
      helpAfter(
        'The digest is SHA-256 over one line per stream, "<category> <stream_id> <version> <hash>\\n", sorted;',
        'a signature covers format, tenant, tx_id, position and digest (docs/architecture.md).',
        '',
        'Examples:',
        '  $ evtctl heads --tenant acme --sign-key heads.key --output acme-heads.json',
        '  $ evtctl verify --tenant acme --against acme-heads.json --public-key heads.pub --require-signed',
        '  $ EVENTPLANE_NATS_CREDS=operator.creds evtctl heads --tenant acme --sign-key heads.key --publish',
        '  $ evtctl verify --tenant acme --against nats --public-key heads.pub',
      ),
    )
    .action(
      kit.action<HeadsOptions>(async (session, _command, opts) => {
        const tenant = requireTenant(session.config, 'heads')
        let heads = await readHeads(session.pg(ROLES.operator), tenant)
        if (opts.signKey !== undefined) {
          let key: Buffer
          try {
            key = await readFile(opts.signKey)
          } catch (e) {
            throw new CliError('cli.bad_usage', `cannot read the signing key ${opts.signKey}`, { cause: e })
          }
          try {
            heads = signHeads(heads, key)
          } catch (e) {
            throw new CliError('cli.bad_usage', `${opts.signKey} is not an Ed25519 private key`, { cause: e })
          }
        }
        const file = headsToFile(heads)
        if (opts.output !== undefined)
          await writeFile(opts.output, `${JSON.stringify(file, null, 2)}\n`, { mode: 0o644 })
        let published: { subject: string; seq: number; duplicate: boolean; parts: number; unchanged?: true } | undefined
        if (opts.publish) {
          const nc = await session.nats()
          const jsm = await jetstreamManager(nc, { checkAPI: false })
          await ensureHeadsStream(jsm)
          const r = await publishTenantHeads({
            sql: session.pg(ROLES.operator),
            jsm,
            js: jetstream(nc),
            heads,
            force: opts.force === true,
          })
          if (r.outcome === 'refused') {
            const first = r.conflicts[0]!
            throw new EventplaneError(
              'store.chain_broken',
              `not published: ${r.conflicts.length} streams no longer lead to the newest published heads (first: ` +
                `${tenant}/${first.category}/${first.stream_id} version ${first.version} ${first.reason}); ` +
                'evtctl verify --against nats shows them, --force re-anchors',
              { details: { conflicts: r.conflicts.slice(0, 100) } },
            )
          }
          if (opts.force)
            session.io.stderr.write(
              `evtctl: WARNING: --force: heads of ${tenant} published without checking that the log extends the ` +
                'newest published ones\n',
            )
          published =
            r.outcome === 'published'
              ? r.published
              : { subject: headsSubject(tenant), seq: 0, duplicate: true, parts: 0, unchanged: true }
        }
        session.log.info({ tenant, streams: file.streams.length, position: file.global_position }, 'heads taken')
        session.out.emit(published ? { ...file, published } : file, () => [
          `tenant ${tenant} at position ${file.global_position} (tx ${file.tx_id}): ${file.streams.length} streams`,
          `digest ${file.digest}`,
          ...(heads.signature ? [`signed with ed25519 key ${keyFingerprint(heads.signature.public_key)}`] : []),
          ...(opts.output === undefined ? [] : [`written to ${opts.output}`]),
          ...(published
            ? [
                `published on ${published.subject}, stream sequence ${published.seq}` +
                  (published.parts > 0 ? ` listing ${published.parts} parts` : '') +
                  (published.duplicate ? ' (already there)' : ''),
              ]
            : []),
        ])
      }),
    )
}
