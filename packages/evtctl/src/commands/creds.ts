import type { Command } from 'commander'
import {
  type AuthDir,
  checkServiceUser,
  connectAuthDirUser,
  listServiceUsers,
  revokeStagedKeys,
  rotateServiceUser,
} from '@eventplane/bus-nats/nats-config'
import type { NatsConnection } from '@nats-io/transport-node'
import { type CommandKit, helpAfter } from '../command-kit.ts'
import type { Session } from '../session.ts'
import { authDir, authDirConnection } from './tenant.ts'

/** The auth dir's `system` connection (account JWT pushes); closed with the session. */
function system(session: Session, auth: AuthDir): Promise<NatsConnection> {
  return authDirConnection(session, (url, options) => connectAuthDirUser(auth, 'system', url, options))
}

/**
 * `evtctl creds rotate|revoke-old|list`: the service users of the log
 * account (relay, gateway, controller, operator) get new keys, and their old
 * keys are revoked live (the log account JWT pushed with every revocation
 * the auth dir remembers). Creds files are written with mode 0600 and never
 * printed; keys (public) are.
 */
export function registerCreds(program: Command, kit: CommandKit): void {
  const creds = program
    .command('creds')
    .description(
      "rotate the service users' NATS creds (relay, gateway, controller, operator); the old key is revoked live",
    )
    .option('--auth-dir <dir>', 'the NATS auth dir made by nats-setup (env EVENTPLANE_NATS_AUTH_DIR)')
    .addHelpText(
      'after',
      helpAfter(
        "A rotation writes a new key's creds to <auth-dir>/creds/<user>.creds (mode 0600, same grants)",
        'and revokes the old key at once: the server closes its connections and refuses it from then on.',
        'A service on the same host reads its creds file on each reconnect and comes back with the new key.',
        'Revocations are kept in the auth dir and merged, never dropped: nats-setup re-runs and restarts',
        'keep them. With --keep-old the old key stays valid until `creds revoke-old` (copy the new file to',
        'every host first).',
        'Tenants: evtctl tenant rotate <tenant>.',
        '',
        'Examples:',
        '  $ evtctl creds rotate relay --auth-dir /etc/eventplane/nats-auth   # a leak: the old key is refused now',
        '  $ evtctl creds rotate gateway --keep-old      # routine, several hosts: copy the file, then',
        '  $ evtctl creds revoke-old gateway',
        '  $ evtctl creds list --json',
      ),
    )

  creds
    .command('rotate')
    .description('issue a service user new creds and revoke its old key (now, or later with --keep-old)')
    .argument('<user>', 'relay, gateway, controller or operator')
    .option('--keep-old', 'keep the old key valid until `creds revoke-old` (multi-host rollouts)')
    .action(
      kit.action<{ keepOld?: boolean }>(async (session, cmd, opts) => {
        const user = checkServiceUser(cmd.args[0]!)
        const auth = authDir(session)
        const keepOld = opts.keepOld === true
        const r = await rotateServiceUser(auth, keepOld ? undefined : await system(session, auth), user, { keepOld })
        session.log.info({ user: r.user, key: r.key, revoked: r.revoked, staged: r.staged }, 'service user rotated')
        session.out.emit(
          { user: r.user, creds_file: r.credsFile, key: r.key, revoked: r.revoked, staged: r.staged },
          () => [
            `user       ${r.user} (rotated)`,
            `creds      ${r.credsFile} (mode 0600: copy it to the ${r.user}'s hosts, keep it secret)`,
            `key        ${r.key}`,
            ...r.revoked.map((k) => `revoked    ${k} (connections closed, refused from now on)`),
            ...r.staged.map((k) => `staged     ${k} (still valid until: evtctl creds revoke-old ${r.user})`),
          ],
        )
      }),
    )

  creds
    .command('revoke-old')
    .description('revoke the keys a `rotate --keep-old` left valid (every user when none is named)')
    .argument('[user]', 'relay, gateway, controller or operator')
    .action(
      kit.action(async (session, cmd) => {
        const name = cmd.args[0]
        if (name !== undefined) checkServiceUser(name)
        const auth = authDir(session)
        const revoked = await revokeStagedKeys(auth, await system(session, auth), name)
        session.log.info({ user: name, revoked }, 'staged keys revoked')
        session.out.emit({ user: name ?? null, revoked }, () =>
          revoked.length === 0
            ? ['no staged keys (the log account JWT was pushed again)']
            : revoked.map((k) => `revoked    ${k} (connections closed, refused from now on)`),
        )
      }),
    )

  creds
    .command('list')
    .description('list the service users with their current key, keys still valid and keys revoked')
    .action(
      kit.action(async (session) => {
        for (const u of await listServiceUsers(authDir(session)))
          session.out.emit(
            { user: u.user, creds_file: u.credsFile, key: u.key, staged: u.staged, revoked: u.revoked },
            () =>
              `${u.user.padEnd(11)} ${u.key}  ${u.revoked} revoked${u.staged.length > 0 ? `, ${u.staged.length} still valid (revoke-old)` : ''}`,
          )
      }),
    )
}
