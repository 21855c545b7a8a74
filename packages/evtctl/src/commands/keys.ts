import type { Command } from 'commander'
import { type SigningTarget, connectAuthDirUser, rotateSigningKey } from '@eventplane/bus-nats/nats-config'
import { type CommandKit, helpAfter } from '../command-kit.ts'
import { CliError } from '../cli-error.ts'
import { authDir, authDirConnection } from './tenant.ts'

/** `log`, `system` or `tenant <tenant>` as the account whose signing key a rotation replaces. */
function target(which: string, tenant: string | undefined): SigningTarget {
  if ((which === 'log' || which === 'system') && tenant === undefined) return { account: which }
  if (which === 'tenant' && tenant !== undefined) return { tenant }
  throw new CliError(
    'cli.bad_usage',
    `keys rotate takes log, system or tenant <tenant>, got ${[which, tenant].filter((a) => a !== undefined).join(' ')}`,
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
      "rotate an account's signing key (log, system, a tenant): its users' creds re-issued, the old key removed live",
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
        '',
        'Examples:',
        '  $ evtctl keys rotate log --auth-dir /etc/eventplane/nats-auth   # relay, gateway, controller, operator',
        '  $ evtctl keys rotate system',
        '  $ evtctl keys rotate tenant acme        # hand acme its re-issued creds file',
      ),
    )

  keys
    .command('rotate')
    .description("replace an account's signing key: log, system, or tenant <tenant>")
    .argument('<account>', 'log, system or tenant')
    .argument('[tenant]', 'the tenant, with tenant')
    .action(
      kit.action(async (session, cmd) => {
        const auth = authDir(session)
        const connect = () =>
          authDirConnection(session, (url, options) => connectAuthDirUser(auth, 'system', url, options))
        const r = await rotateSigningKey(auth, connect, target(cmd.args[0]!, cmd.args[1]))
        session.log.info({ account: r.account, key: r.key, removed: r.removed }, 'signing key rotated')
        session.out.emit({ account: r.account, key: r.key, removed: r.removed, reissued: r.reissued }, () => [
          `account    ${r.account} (signing key rotated)`,
          `key        ${r.key}`,
          `removed    ${r.removed} (users it signed are refused from now on)`,
          ...r.reissued.map((f) => `reissued   ${f} (mode 0600, same user key)`),
        ])
      }),
    )
}
