import type { Command } from 'commander'
import {
  type AuthDir,
  type RotatedUser,
  SYSTEM_USER,
  checkAuthDirUser,
  connectAuthDirUser,
  listAuthDirUsers,
  revokeStagedKeys,
  revokeStagedSystemKeys,
  rotateServiceUser,
  rotateSystemUser,
} from '@eventplane/bus-nats/nats-config'
import type { NatsConnection } from '@nats-io/transport-node'
import { type CommandKit, helpAfter } from '../command-kit.ts'
import type { Session } from '../session.ts'
import { atServer, authDir, authDirConnection } from './tenant.ts'

/** The log account's user evtctl's operator commands connect as (`creds/operator.creds`). */
const OPERATOR_USER = 'operator'

/**
 * A new `system` connection (account JWT pushes) with the creds file as it is now; closed with the session at the
 * latest. A `system` rotation opens it after writing the new creds: the old key's revocation closes its connections.
 */
function system(session: Session, auth: AuthDir): Promise<NatsConnection> {
  return authDirConnection(session, (url, options) => connectAuthDirUser(auth, 'system', url, options))
}

/** Rotates `user`: a service user of the log account, or the system account's user. */
async function rotate(session: Session, auth: AuthDir, user: string, keepOld: boolean): Promise<RotatedUser> {
  const connect = keepOld ? undefined : () => system(session, auth)
  if (user === SYSTEM_USER) return rotateSystemUser(auth, connect, { keepOld })
  return rotateServiceUser(auth, await connect?.(), user, { keepOld })
}

/** Revokes the staged keys of `user` (every user when undefined); the keys revoked now. */
async function revokeOld(session: Session, auth: AuthDir, user: string | undefined): Promise<string[]> {
  const revoked = user === SYSTEM_USER ? [] : await revokeStagedKeys(auth, await system(session, auth), user)
  if (user !== undefined && user !== SYSTEM_USER) return revoked
  return [...revoked, ...(await revokeStagedSystemKeys(auth, () => system(session, auth)))]
}

/**
 * What a rotated user's creds file is for, on its `creds` line: a service's go to the hosts it runs on; `operator`
 * runs no service but is the user evtctl itself connects as for operator commands and `up`, on the operator's
 * machine, where the auth dir is; `system` is the NATS system account's user, with which evtctl pushes account JWTs.
 */
function credsUse(user: string): string {
  if (user === OPERATOR_USER)
    return (
      "the log account's operator user, with which evtctl's operator commands and `evtctl up` connect " +
      '(--nats-creds); copy it to any other host that runs them'
    )
  if (user !== SYSTEM_USER) return `copy it to the ${user}'s hosts`
  return (
    "the NATS system account's user, with which evtctl's tenant, creds and keys commands push account JWTs; " +
    'copy it to any other host that runs them with this auth dir'
  )
}

/**
 * `evtctl creds rotate|revoke-old|list`: the service users of the log
 * account (relay, gateway, controller, operator) and the system account's
 * user (`system`) get new keys, and their old keys are revoked live (the
 * account's JWT pushed with every revocation the auth dir remembers). Creds
 * files are written with mode 0600 and never printed; keys (public) are.
 */
export function registerCreds(program: Command, kit: CommandKit): void {
  const creds = program
    .command('creds')
    .description(
      "rotate the auth dir users' NATS creds (relay, gateway, controller, operator, system); the old key is revoked live",
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
        'system (who pushes account JWTs for tenant and creds commands) is revoked in the system account;',
        'the push goes through a connection made with the new creds, written first.',
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
    .description('issue a user new creds and revoke its old key (now, or later with --keep-old)')
    .argument('<user>', 'relay, gateway, controller, operator or system')
    .option('--keep-old', 'keep the old key valid until `creds revoke-old` (multi-host rollouts)')
    .action(
      kit.action<{ keepOld?: boolean }>(async (session, cmd, opts) => {
        const user = checkAuthDirUser(cmd.args[0]!)
        const r = await atServer(session, rotate(session, authDir(session), user, opts.keepOld === true))
        session.log.info({ user: r.user, key: r.key, revoked: r.revoked, staged: r.staged }, 'auth dir user rotated')
        session.out.emit(
          { user: r.user, creds_file: r.credsFile, key: r.key, revoked: r.revoked, staged: r.staged },
          () => [
            `user       ${r.user} (rotated)`,
            `creds      ${r.credsFile} (mode 0600: ${credsUse(r.user)}, keep it secret)`,
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
    .argument('[user]', 'relay, gateway, controller, operator or system')
    .action(
      kit.action(async (session, cmd) => {
        const name = cmd.args[0]
        if (name !== undefined) checkAuthDirUser(name)
        const revoked = await atServer(session, revokeOld(session, authDir(session), name))
        session.log.info({ user: name, revoked }, 'staged keys revoked')
        const pushed = name === undefined ? 'the log and system account JWTs were' : "the account's JWT was"
        session.out.emit({ user: name ?? null, revoked }, () =>
          revoked.length === 0
            ? [`no staged keys (${pushed} pushed again)`]
            : revoked.map((k) => `revoked    ${k} (connections closed, refused from now on)`),
        )
      }),
    )

  creds
    .command('list')
    .description('list the auth dir users with their current key, keys still valid and keys revoked')
    .action(
      kit.action(async (session) => {
        for (const u of await listAuthDirUsers(authDir(session)))
          session.out.emit(
            { user: u.user, creds_file: u.credsFile, key: u.key, staged: u.staged, revoked: u.revoked },
            () =>
              `${u.user.padEnd(11)} ${u.key}  ${u.revoked} revoked${u.staged.length > 0 ? `, ${u.staged.length} still valid (revoke-old)` : ''}`,
          )
      }),
    )
}
