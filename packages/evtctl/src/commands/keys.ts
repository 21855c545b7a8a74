import type { Command } from 'commander'
import { resolve } from 'node:path'
import {
  type AuthDir,
  type MovedSeed,
  type SigningTarget,
  bringIdentitySeedsOnline,
  connectAuthDirUser,
  moveIdentitySeedsOffline,
  rotateOperatorSigningKey,
  rotateSigningKey,
} from '@eventplane/bus-nats/nats-config'
import type { connect } from '@nats-io/transport-node'
import type { Session } from '../session.ts'
import { type CommandKit, helpAfter } from '../command-kit.ts'
import { CliError } from '../cli-error.ts'
import { atServer, authDir, authDirConnection } from './tenant.ts'

/** `log`, `system`, `operator` or `tenant <tenant>` as whose signing key a rotation replaces. */
function target(which: string, tenant: string | undefined): SigningTarget | 'operator' {
  if ((which === 'log' || which === 'system') && tenant === undefined) return { account: which }
  if (which === 'operator' && tenant === undefined) return 'operator'
  if (which === 'tenant' && tenant !== undefined) return { tenant }
  throw new CliError(
    'cli.bad_usage',
    `keys rotate takes log, system, operator or tenant <tenant>, got ${[which, tenant].filter((a) => a !== undefined).join(' ')}`,
  )
}

/**
 * `evtctl keys rotate log|system|tenant <tenant>`: replaces an account's
 * signing key (the key that signs its users) live: the account keeps its
 * identity key, and so its JetStream state, imports and tenants' grants.
 */
export function registerKeys(program: Command, kit: CommandKit): void {
  const keys = program
    .command('keys')
    .description(
      "rotate a NATS signing key (log, system, a tenant's, the operator's) live; move the identity seeds offline and back",
    )
    .option('--auth-dir <dir>', 'the NATS auth dir made by nats-setup (env EVENTPLANE_NATS_AUTH_DIR)')
    .addHelpText(
      'after',
      helpAfter(
        "Users are signed by their account's signing key (<auth-dir>/accounts/<account>.signing.nk,",
        '<auth-dir>/tenants/<tenant>.signing.nk), never by the account key itself once the server knows it.',
        'A rotation adds a new signing key to the account JWT (pushed), re-issues every creds file of the',
        'account for the same user key signed by it, then pushes the JWT without the old key: the server',
        'closes the connections of users the old key signed. Services read their creds file on reconnect.',
        'Cut short, run it again: it finishes with the same new key.',
        'operator: the operator signing key signs every account JWT; the server reads operator.jwt from its',
        'config only, so the rotation takes two runs, each followed by a restart with the nats-setup config.',
        '',
        'Examples:',
        '  $ evtctl keys rotate log --auth-dir /etc/eventplane/nats-auth   # relay, gateway, controller, operator',
        '  $ evtctl keys rotate system',
        '  $ evtctl keys rotate tenant acme        # hand acme its re-issued creds file',
        '  $ evtctl keys rotate operator           # twice: restart nats-server with the nats-setup config after each',
        '',
        'Identity seeds (operator.nk, accounts/*.nk, tenants/<tenant>.nk) sign nothing day to day once every signing',
        'key is known to the server: keys offline moves them off the host (to removable media, say), keys online',
        'brings them back for what needs them (keys rotate operator; nats-setup after it). Run again (same --to),',
        'keys offline moves the seeds still on the host: a tenant added meanwhile (tenant add says so).',
        '  $ evtctl keys offline --to /media/usb/eventplane-identity',
        '  $ evtctl keys online --from /media/usb/eventplane-identity',
      ),
    )

  keys
    .command('rotate')
    .description("replace a signing key: an account's (log, system, tenant <tenant>) or the operator's")
    .argument('<account>', 'log, system, operator or tenant')
    .argument('[tenant]', 'the tenant, with tenant')
    .action(
      kit.action(async (session, cmd) => {
        const auth = authDir(session)
        const which = target(cmd.args[0]!, cmd.args[1])
        const system = () =>
          authDirConnection(session, (url, options) => connectAuthDirUser(auth, 'system', url, options))
        if (which === 'operator') return rotateOperator(session, auth, system)
        const r = await atServer(session, rotateSigningKey(auth, system, which))
        session.log.info({ account: r.account, key: r.key, removed: r.removed }, 'signing key rotated')
        session.out.emit({ account: r.account, key: r.key, removed: r.removed, reissued: r.reissued }, () => [
          `account    ${r.account} (signing key rotated)`,
          `key        ${r.key}`,
          `removed    ${r.removed} (users it signed are refused from now on)`,
          ...r.reissued.map((f) => `reissued   ${f} (mode 0600, same user key)`),
        ])
      }),
    )
  registerMoves(keys, kit)
}

/** `evtctl keys offline --to <dir>` / `keys online --from <dir>`: the identity seeds moved off the host or back. */
function registerMoves(keys: Command, kit: CommandKit): void {
  const report = (session: Session, moved: MovedSeed[], where: string, direction: 'offline' | 'online') => {
    session.log.info({ seeds: moved.map((m) => m.seed), dir: where }, `identity seeds ${direction}`)
    const verb = direction === 'offline' ? 'moved to' : 'brought back from'
    session.out.emit({ [direction === 'offline' ? 'to' : 'from']: where, seeds: moved }, () => [
      ...moved.map((m) => `${m.seed.padEnd(32)} ${m.key} (${verb} ${where})`),
      ...(moved.length === 0 ? [`no identity seed to move (${direction} already)`] : []),
    ])
  }
  keys
    .command('offline')
    .description('move the identity seeds off the host: users, JWTs and tokens are signed by signing keys only')
    .requiredOption('--to <dir>', 'where to (off the host: removable media); same paths as in the auth dir')
    .action(
      kit.action(async (session, cmd) => {
        const to = cmd.opts<{ to: string }>().to
        report(session, await moveIdentitySeedsOffline(authDir(session), to), resolve(to), 'offline')
      }),
    )
  keys
    .command('online')
    .description('bring back the identity seeds keys offline moved (each checked against the key recorded)')
    .requiredOption('--from <dir>', 'the directory keys offline moved them to')
    .action(
      kit.action(async (session, cmd) => {
        const from = cmd.opts<{ from: string }>().from
        report(session, await bringIdentitySeedsOnline(authDir(session), from), resolve(from), 'online')
      }),
    )
}

/**
 * What follows each step of the operator rotation: evtctl writes no server config, so the step says to run
 * nats-setup (which reads operator.jwt anew) before the restart, not only to restart.
 */
const RESTART_WITH_SETUP =
  'run nats-setup again (same --auth-dir, --store-dir and --out) and restart nats-server with the config it writes'

/** One step of the operator signing key's rotation; each is followed by a restart with a re-generated config. */
async function rotateOperator(session: Session, auth: AuthDir, system: () => ReturnType<typeof connect>) {
  const r = await atServer(session, rotateOperatorSigningKey(auth, system))
  session.log.info({ step: r.step, key: r.key, old: r.old }, 'operator signing key rotation')
  const next =
    r.step === 'staged'
      ? `${RESTART_WITH_SETUP} (it trusts both keys), then run: evtctl keys rotate operator`
      : `${RESTART_WITH_SETUP}: until then the server still trusts the old key`
  session.out.emit({ step: r.step, key: r.key, old: r.old, pushed: r.pushed, next }, () => [
    `operator   signing key rotation ${r.step === 'staged' ? 'staged (step 1 of 2)' : 'done (step 2 of 2)'}`,
    `key        ${r.key}`,
    `old        ${r.old}`,
    ...(r.pushed.length > 0 ? [`pushed     ${r.pushed.join(', ')} (signed by the new key)`] : []),
    `next       ${next}`,
  ])
}
