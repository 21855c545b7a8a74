import { Command, CommanderError, InvalidArgumentError, Option } from 'commander'
import type { LevelWithSilent } from 'pino'
import { EventplaneError } from '@eventplane/core'
import { type ConfigFlags, resolveConfig } from './config.ts'
import { hasPassword, passwordInArgvWarning, unknownEnvWarnings } from './config-warnings.ts'
import { EXIT, exitCodeFor, formatFailure, toEventplaneError } from './exit-codes.ts'
import { type CliIo, Output } from './io.ts'
import { STOP_GRACE_MS, interruption } from './interrupt.ts'
import { LOG_LEVELS, createLogger } from './logger.ts'
import { Session } from './session.ts'
import { registerExport } from './commands/export.ts'
import { registerHeads } from './commands/heads.ts'
import { registerImport } from './commands/import.ts'
import { registerMigrate } from './commands/migrate.ts'
import { registerPublish } from './commands/publish.ts'
import { registerRead } from './commands/read.ts'
import { registerReplay } from './commands/replay.ts'
import { registerState } from './commands/state.ts'
import { registerStatus } from './commands/status.ts'
import { registerStreams } from './commands/streams.ts'
import { registerSubscribe } from './commands/subscribe.ts'
import { registerTail } from './commands/tail.ts'
import { registerTenant } from './commands/tenant.ts'
import { registerTrace } from './commands/trace.ts'
import { registerUp } from './commands/up.ts'
import { registerVerify } from './commands/verify.ts'

/** A command body: gets the open session and the commander command (for args and options). */
export type Action = (session: Session, command: Command) => Promise<void>

/** What each `commands/*.ts` registrar receives. */
export interface CommandKit {
  io: CliIo
  /** Wraps an action: resolves config, opens a session, always closes it. */
  action(fn: Action): (...args: unknown[]) => Promise<void>
}

interface GlobalOptions extends ConfigFlags {
  /** `tenant --auth-dir`, passed on as natsAuthDir. */
  authDir?: string
  json?: boolean
  logLevel: LevelWithSilent
}

/** Commands that stop themselves cleanly on SIGINT/SIGTERM; every other command is cut off at once. */
const SELF_STOPPING = new Set(['up', 'subscribe', 'tail', 'replay'])

const HELP_FOOTER = `
Configuration (first found wins, per setting):
  flag  >  EVENTPLANE_* env  >  config file (--config, EVENTPLANE_CONFIG, ./eventplane.json)  >  default
  env: EVENTPLANE_DATABASE_URL, EVENTPLANE_NATS_URL, EVENTPLANE_NATS_CREDS | EVENTPLANE_NATS_USER
       with EVENTPLANE_NATS_PASSWORD_FILE | EVENTPLANE_NATS_PASSWORD, EVENTPLANE_TENANT,
       EVENTPLANE_NATS_AUTH_DIR (tenant commands),
       EVENTPLANE_DATABASE_URL_<ROLE> (per-role override, e.g. _READER, _OPERATOR)

Exit codes:
  0 ok   1 bad usage or invalid input   2 conflict (expected version, idempotency)
  3 unavailable (retry is safe)   4 denied (credentials or permissions)
  70 internal error   130 interrupted

Examples:
  $ evtctl migrate
  $ evtctl up
  $ evtctl publish acme/deployment/web-1 create --data '{"image":"web:1.2","replicas":2}' --expected-version no_stream
  $ evtctl read acme/deployment/web-1 --json
  $ evtctl streams --tenant acme --category deployment
  $ evtctl read --category deployment --tenant acme --limit 50
  $ evtctl tail --tenant acme --kind fact
  $ evtctl trace 0190c7a2-5b1e-7c3d-9f00-2a4b6c8d0e1f --tenant acme
  $ evtctl replay deployment_status
  $ evtctl status
  $ evtctl tenant add acme --auth-dir /etc/eventplane/nats-auth
`

/** A commander parser for an integer option of at least `min` (default 0). */
export function intOption(name: string, min = 0): (value: string) => number {
  return (value) => {
    if (!/^\d{1,15}$/.test(value) || Number(value) < min)
      throw new InvalidArgumentError(`${name} must be an integer >= ${min}`)
    return Number(value)
  }
}

/** The `--tenant` option, for commands scoped to one tenant. */
export function tenantOption(): Option {
  return new Option('--tenant <tenant>', 'tenant (default: EVENTPLANE_TENANT or the config file)')
}

/**
 * The evtctl command tree, writing to `io` and never exiting the process:
 * commander errors are thrown (`exitOverride`) and turned into exit codes by {@link run}.
 */
export function buildProgram(io: CliIo): Command {
  const program = new Command('evtctl')
  program
    .description('Operate an eventplane event store: PostgreSQL log, NATS bus, projections.')
    .version('0.1.0')
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
      // run() prints the one-line failure itself, from the thrown CommanderError.
      outputError: () => {},
      getOutHelpWidth: () => io.stdout.columns ?? 100,
      getErrHelpWidth: () => io.stderr.columns ?? 100,
    })
    .configureHelp({ showGlobalOptions: true })
    .option('--config <file>', 'JSON config file (default: EVENTPLANE_CONFIG or ./eventplane.json if present)')
    .option('--database-url <url>', 'PostgreSQL admin URL; role URLs are derived from it (env EVENTPLANE_DATABASE_URL)')
    .option('--nats-url <url>', 'NATS server URL (env EVENTPLANE_NATS_URL)')
    .option('--nats-user <user>', 'NATS user (env EVENTPLANE_NATS_USER)')
    .option('--nats-password-file <file>', 'file holding the NATS password (env EVENTPLANE_NATS_PASSWORD_FILE)')
    .option('--nats-creds <file>', 'NATS creds file, instead of user and password (env EVENTPLANE_NATS_CREDS)')
    .option('--json', 'machine-readable output (bigints as strings)')
    .addOption(
      new Option('--log-level <level>', 'log level of the logs on stderr (JSON, or readable lines on a terminal)')
        .choices(LOG_LEVELS)
        .default('warn'),
    )
    .addHelpText('after', HELP_FOOTER)

  const kit: CommandKit = {
    io,
    action:
      (fn) =>
      async (...args) => {
        const command = args.at(-1) as Command
        const g = command.optsWithGlobals<GlobalOptions>()
        const log = createLogger(g.logLevel, io.stderr, io.env)
        const warn = (message: string): void => void io.stderr.write(`evtctl: warning: ${message}\n`)
        for (const message of unknownEnvWarnings(io.env)) warn(message)
        if (hasPassword(g.databaseUrl)) warn(passwordInArgvWarning('--database-url', 'EVENTPLANE_DATABASE_URL'))
        if (hasPassword(g.natsUrl)) warn(passwordInArgvWarning('--nats-url', 'EVENTPLANE_NATS_URL'))
        const config = resolveConfig(
          {
            config: g.config,
            databaseUrl: g.databaseUrl,
            natsUrl: g.natsUrl,
            natsUser: g.natsUser,
            natsPasswordFile: g.natsPasswordFile,
            natsCreds: g.natsCreds,
            natsAuthDir: g.authDir,
            tenant: g.tenant,
          },
          { env: io.env, cwd: io.cwd, warn },
        )
        log.debug(
          { command: command.name(), configFile: config.configFile, sources: config.sources },
          'config resolved',
        )
        const session = new Session(io, config, new Output(io, g.json === true), log)
        // The first Ctrl-C always ends the command, even one waiting on a server that never answers.
        const stop = interruption(io.signal, SELF_STOPPING.has(command.name()) ? STOP_GRACE_MS : 0)
        try {
          await Promise.race([fn(session, command), stop.interrupted])
        } catch (e) {
          // The one-line failure is printed by run(); the cause chain is for --log-level debug.
          log.debug({ err: e }, 'command failed')
          throw await session.rootCause(e)
        } finally {
          stop.cancel()
          await session.close()
        }
      },
  }
  registerMigrate(program, kit)
  registerPublish(program, kit)
  registerRead(program, kit)
  registerStreams(program, kit)
  registerTail(program, kit)
  registerSubscribe(program, kit)
  registerReplay(program, kit)
  registerTrace(program, kit)
  registerState(program, kit)
  registerStatus(program, kit)
  registerExport(program, kit)
  registerImport(program, kit)
  registerHeads(program, kit)
  registerVerify(program, kit)
  registerUp(program, kit)
  registerTenant(program, kit)
  return program
}

const HELP_CODES = new Set(['commander.helpDisplayed', 'commander.version'])

/**
 * Runs evtctl with `argv` (without node and script) and returns the exit
 * code. A failure writes exactly one line, `evtctl: <code>: <message>`, to stderr.
 */
export async function run(argv: readonly string[], io: CliIo): Promise<number> {
  const program = buildProgram(io)
  try {
    await program.parseAsync([...argv], { from: 'user' })
    return EXIT.ok
  } catch (e) {
    if (e instanceof CommanderError) {
      if (HELP_CODES.has(e.code)) return EXIT.ok
      // Bare `evtctl`: commander already printed the help to stderr.
      if (e.code === 'commander.help') return e.exitCode === 0 ? EXIT.ok : EXIT.usage
      const message = e.message.replace(/^error: /, '')
      io.stderr.write(formatFailure(new EventplaneError('cli.bad_usage', `${message} (see evtctl --help)`)))
      return EXIT.usage
    }
    const typed = toEventplaneError(e)
    io.stderr.write(formatFailure(typed))
    return exitCodeFor(typed)
  }
}
