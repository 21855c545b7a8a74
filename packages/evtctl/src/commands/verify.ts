import { readFile } from 'node:fs/promises'
import type { Command } from 'commander'
import { EventplaneError } from '@eventplane/core'
import { HEADS_STREAM_NAME, headsOfTenant, latestPublishedHeads } from '@eventplane/bus-nats'
import { jetstreamManager } from '@nats-io/jetstream'
import { type ChainBreak, type ChainHeads, ROLES, checkHeads, keyFingerprint, verifyLog } from '@eventplane/store-pg'
import { CliError } from '../cli-error.ts'
import { type CommandKit, tenantOption, helpAfter } from '../command-kit.ts'
import type { Session } from '../session.ts'
import { alignRows } from '../table.ts'

interface VerifyOptions {
  stream?: string
  against?: string
  publicKey?: string
  requireSigned?: boolean
}

const PROGRESS_INTERVAL_MS = 1000

/** `--against nats`: the tenant's newest heads published on NATS, instead of a file. */
const AGAINST_NATS = 'nats'

/** Where the heads came from: a file, or a message of the heads stream. */
type HeadsSource =
  | { file: string }
  | { stream: string; seq: number; published_at: string; skipped?: { seq: number; reason: string }[] }

async function readPublicKey(publicKeyFile: string | undefined): Promise<Buffer | undefined> {
  if (publicKeyFile === undefined) return undefined
  try {
    return await readFile(publicKeyFile)
  } catch (e) {
    throw new EventplaneError('store.chain_unverifiable', `cannot read the public key ${publicKeyFile}`, { cause: e })
  }
}

async function loadHeads(file: string, publicKeyFile: string | undefined): Promise<ChainHeads> {
  let parsed: unknown
  try {
    parsed = JSON.parse(await readFile(file, 'utf8'))
  } catch (e) {
    throw new EventplaneError('store.chain_unverifiable', `cannot read the heads file ${file}`, { cause: e })
  }
  return checkHeads(parsed, await readPublicKey(publicKeyFile))
}

/**
 * The tenant's newest published heads that check like a file (and are signed
 * by `--public-key` when given). Newer messages on its subject that do not
 * (anyone with publish rights there could have written them) are skipped and
 * reported; none that checks is `store.chain_unverifiable`.
 */
async function loadPublishedHeads(
  session: Session,
  tenant: string,
  publicKeyFile: string | undefined,
): Promise<{ heads: ChainHeads; source: HeadsSource }> {
  const publicKey = await readPublicKey(publicKeyFile)
  const jsm = await jetstreamManager(await session.nats(), { checkAPI: false })
  const { found, refused } = await latestPublishedHeads(jsm, tenant, headsOfTenant(tenant, publicKey))
  const newest = refused[0]
  if (found === undefined)
    throw new EventplaneError(
      'store.chain_unverifiable',
      newest === undefined
        ? `no heads of tenant ${tenant} were published on NATS`
        : `none of the newest ${refused.length} messages on tenant ${tenant}'s heads subject check as its heads ` +
            `(sequence ${newest.seq}: ${newest.reason})`,
    )
  if (newest !== undefined)
    session.io.stderr.write(
      `evtctl: WARNING: skipped ${refused.length} newer messages on tenant ${tenant}'s heads subject that do not ` +
        `check as its heads (newest: sequence ${newest.seq}, ${newest.reason}); checking against sequence ` +
        `${found.seq}. Someone with publish rights on the heads subjects wrote them.\n`,
    )
  return {
    heads: found.heads,
    source: {
      stream: HEADS_STREAM_NAME,
      seq: found.seq,
      published_at: found.published_at,
      ...(newest !== undefined && { skipped: refused.map(({ seq, reason }) => ({ seq, reason })) }),
    },
  }
}

/**
 * Whether the heads' authenticity was checked: `public_key` when signed by the key `--public-key` pins;
 * otherwise not: `unsigned`, or `no_public_key` (signed, but by whatever key the heads carry, so anyone
 * who can write them can sign them with a key of their own).
 */
type Authenticity = 'public_key' | 'unsigned' | 'no_public_key'

function authenticityOf(heads: ChainHeads, publicKeyGiven: boolean): Authenticity {
  // checkHeads refuses heads not signed by a given --public-key, so a key given means it signed them.
  if (publicKeyGiven) return 'public_key'
  return heads.signature ? 'no_public_key' : 'unsigned'
}

/** The stderr line for heads whose authenticity was not checked: who could have written them. */
function notAuthenticatedWarning(heads: ChainHeads, authenticity: Authenticity, source: HeadsSource): string {
  const where = 'file' in source ? `in ${source.file}` : `published on NATS (${source.stream} sequence ${source.seq})`
  const writers =
    'file' in source
      ? `could write ${source.file}`
      : `can publish on eventplane-heads.${heads.tenant} (the relay's or the operator's NATS credentials)`
  const what =
    authenticity === 'unsigned'
      ? `the heads ${where} are unsigned, so anyone who ${writers} could have made them`
      : `the heads ${where} are signed by key ${keyFingerprint(heads.signature!.public_key)}, but no --public-key ` +
        `was given and a signature by any key passes, so anyone who ${writers} could have signed them`
  return (
    `evtctl: WARNING: authenticity of the heads NOT checked: ${what}. Give --public-key ` +
    '(and --require-signed to make this an error).\n'
  )
}

const breakRow = (b: ChainBreak) => [
  b.kind,
  `${b.tenant}/${b.category}/${b.stream_id}`,
  String(b.version),
  b.event_id ?? '-',
  b.message,
]

/**
 * `evtctl verify [--tenant t] [--stream c/id] [--against heads.json]`:
 * recomputes the hash chains from the log and reports each stream's first
 * broken link. Exit 0 intact, 2 broken, 3 could not check.
 */
export function registerVerify(program: Command, kit: CommandKit): void {
  program
    .command('verify')
    .description('recompute the log’s hash chains and report the first broken link of each stream')
    .addOption(tenantOption())
    .option('--stream <category/id>', 'only this stream of the tenant')
    .option(
      '--against <file|nats>',
      'heads saved earlier (evtctl heads): the log must still lead to them; "nats": the tenant’s newest published heads',
    )
    .option('--public-key <file>', 'the Ed25519 public key (PEM) that must have signed the heads file')
    .option('--require-signed', 'exit 3 unless the heads are signed by --public-key (their authenticity checked)')
    .addHelpText(
      'after',
      helpAfter(
        'Exit codes: 0 intact, 2 broken (each broken stream is listed: what, stream, version, event),',
        '3 could not check (database unreachable, heads file unreadable, unsigned or badly signed, none published;',
        'with --require-signed also: no --public-key given).',
        'Without --public-key the heads are not authenticated: unsigned heads, or heads signed by any key, are taken',
        'as they are, and verify says so on stderr and in --json (against.authenticated false). Audits and scheduled',
        'checks should pass --public-key --require-signed.',
        '--against nats reads the newest heads published for --tenant (evtctl heads --publish, or the relay with',
        '--heads-every-ms) from the JetStream stream EVENTPLANE_HEADS; a file named nats is ./nats.',
        'Progress goes to stderr once a second. Without saved heads, verify proves each stream is one',
        'unbroken chain; only heads kept outside the database show that a whole chain was not rewritten.',
        '',
        'Examples:',
        '  $ evtctl verify --tenant acme',
        '  $ evtctl verify --tenant acme --against acme-heads.json --public-key heads.pub --json',
        '  $ evtctl verify --tenant acme --against nats --public-key heads.pub --require-signed',
      ),
    )
    .action(
      kit.action<VerifyOptions>(async (session, _command, opts) => {
        const tenant = session.config.sources.tenant === 'flag' ? session.config.tenant : undefined
        if (opts.against === AGAINST_NATS && tenant === undefined)
          throw new CliError('cli.bad_usage', '--against nats needs --tenant')
        if (opts.requireSigned && opts.against === undefined)
          throw new CliError('cli.bad_usage', '--require-signed needs --against (and --public-key)')
        if (opts.requireSigned && opts.publicKey === undefined)
          throw new EventplaneError(
            'store.chain_unverifiable',
            '--require-signed: no --public-key given, so the heads cannot be authenticated (unsigned heads, or ' +
              'heads signed by any key, would pass)',
          )
        let heads: ChainHeads | undefined
        let source: HeadsSource | undefined
        if (opts.against === AGAINST_NATS && tenant !== undefined) {
          ;({ heads, source } = await loadPublishedHeads(session, tenant, opts.publicKey))
        } else if (opts.against !== undefined) {
          heads = await loadHeads(opts.against, opts.publicKey)
          source = { file: opts.against }
        }
        if (heads && tenant !== undefined && heads.tenant !== tenant)
          throw new CliError('cli.bad_usage', `the heads file is tenant ${heads.tenant}'s, not ${tenant}'s`)
        const authenticity = heads && authenticityOf(heads, opts.publicKey !== undefined)
        if (heads && source && authenticity !== 'public_key')
          session.io.stderr.write(notAuthenticatedWarning(heads, authenticity!, source))
        const scopeTenant = tenant ?? heads?.tenant
        let stream: { category: string; id: string } | undefined
        if (opts.stream !== undefined) {
          const [category, ...rest] = opts.stream.split('/')
          if (scopeTenant === undefined || !category || rest.length === 0)
            throw new CliError('cli.bad_usage', '--stream needs --tenant and the form category/id')
          stream = { category, id: rest.join('/') }
        }
        const started = Date.now()
        let printedAt = started
        const result = await verifyLog(session.pg(ROLES.operator), {
          ...(scopeTenant === undefined ? {} : { tenant: scopeTenant }),
          ...(stream && { stream }),
          ...(heads && { heads }),
          ...(session.signal && { signal: session.signal }),
          onProgress(events) {
            const now = Date.now()
            if (now - printedAt < PROGRESS_INTERVAL_MS) return
            printedAt = now
            const rate = Math.round((events * 1000) / (now - started))
            session.io.stderr.write(`verify: ${events} events checked, ${rate} events/s\n`)
          },
        })
        const seconds = (Date.now() - started) / 1000
        session.log.info({ events: result.events, broken: result.brokenStreams, seconds }, 'verified')
        session.out.emit(
          {
            intact: result.intact,
            events: result.events,
            streams: result.streams,
            broken_streams: result.brokenStreams,
            breaks: result.breaks,
            ...(heads && {
              against: {
                tenant: heads.tenant,
                tx_id: heads.tx_id.toString(),
                global_position: heads.global_position.toString(),
                signed_by: heads.signature ? keyFingerprint(heads.signature.public_key) : null,
                authenticated: authenticity === 'public_key',
                authenticity,
                ...source,
              },
            }),
          },
          () => [
            ...(result.breaks.length > 0
              ? alignRows([['broken', 'stream', 'version', 'event', 'what'], ...result.breaks.map(breakRow)])
              : []),
            `${result.intact ? 'intact' : 'BROKEN'}: ${result.events} events in ${result.streams} streams checked in ` +
              `${seconds.toFixed(1)} s${result.intact ? '' : `, ${result.brokenStreams} streams broken`}` +
              (heads
                ? `; against heads at position ${heads.global_position}` +
                  (source && 'seq' in source ? ` published on NATS (${source.stream} sequence ${source.seq})` : '') +
                  (heads.signature ? ` signed by ${keyFingerprint(heads.signature.public_key)}` : ' (unsigned)') +
                  (authenticity === 'public_key'
                    ? ' (the --public-key)'
                    : ', authenticity NOT checked (no --public-key; see the warning)')
                : ''),
          ],
        )
        if (!result.intact)
          throw new EventplaneError(
            'store.chain_broken',
            `${result.brokenStreams} streams have a broken hash chain (first: ${result.breaks[0]?.kind} at ` +
              `${result.breaks[0]?.tenant}/${result.breaks[0]?.category}/${result.breaks[0]?.stream_id} ` +
              `version ${result.breaks[0]?.version})`,
          )
      }),
    )
}
