import { Command, CommanderError, Help, Option } from 'commander'
import type { LevelWithSilent } from 'pino'
import type { CommandKit } from './command-kit.ts'
import type { ConfigFlags } from './config.ts'
import type { CliIo } from './io.ts'
import { LOG_LEVELS } from './log-levels.ts'

export type { Action, CommandKit } from './command-kit.ts'

interface GlobalOptions extends ConfigFlags {
  /** `tenant --auth-dir` and `creds --auth-dir`, passed on as natsAuthDir. */
  authDir?: string
  json?: boolean
  logLevel: LevelWithSilent
}

/** Commands that stop themselves cleanly on SIGINT/SIGTERM; every other command is cut off at once. */
const SELF_STOPPING = new Set(['up', 'subscribe', 'tail', 'replay', 'relay', 'gateway', 'run'])

const HELP_FOOTER = `
Configuration (first found wins, per setting):
  flag  >  EVENTPLANE_* env  >  config file (--config, EVENTPLANE_CONFIG, ./eventplane.json)  >  default
  env: EVENTPLANE_DATABASE_URL, EVENTPLANE_NATS_URL, EVENTPLANE_NATS_CREDS | EVENTPLANE_NATS_USER
       with EVENTPLANE_NATS_PASSWORD_FILE | EVENTPLANE_NATS_PASSWORD, EVENTPLANE_TENANT,
       EVENTPLANE_NATS_AUTH_DIR (tenant, creds and keys), EVENTPLANE_DOMAIN (commands that run a domain),
       EVENTPLANE_LOG_LEVEL, EVENTPLANE_RELAY_* and EVENTPLANE_STREAM_* (relay), EVENTPLANE_GATEWAY_* (gateway),
       EVENTPLANE_OPS_PORT (services: /healthz, /readyz, /metrics),
       EVENTPLANE_DATABASE_URL_<ROLE> (per-role override, e.g. _READER, _OPERATOR)

Exit codes:
  0 ok   1 bad usage or invalid input   2 conflict (expected version, idempotency, a broken hash chain)
  3 unavailable (retry is safe)   4 denied (credentials or permissions)
  70 internal error   130 interrupted

Examples:
  $ evtctl migrate
  $ evtctl up --domain ./domain.js
  $ evtctl relay --nats-creds relay.creds       # production: relay, gateway and run, each with its own creds
  $ evtctl gateway --domain ./domain.js --nats-creds gateway.creds
  $ evtctl run --domain ./domain.js --nats-creds controller.creds
  $ evtctl publish acme/deployment/web-1 create --data '{"image":"web:1.2","replicas":2}' --expected-version no_stream
  $ evtctl read acme/deployment/web-1 --json
  $ evtctl streams --tenant acme --category deployment
  $ evtctl read --category deployment --tenant acme --limit 50
  $ evtctl tail --tenant acme --kind fact
  $ evtctl trace 0190c7a2-5b1e-7c3d-9f00-2a4b6c8d0e1f --tenant acme
  $ evtctl replay deployment_status
  $ evtctl status
  $ evtctl tenant add acme --auth-dir /etc/eventplane/nats-auth
  $ evtctl creds rotate relay --auth-dir /etc/eventplane/nats-auth
`

/**
 * The evtctl command tree with the commands of `registrars`, writing to `io` and never exiting the process:
 * commander errors are thrown (`exitOverride`) and turned into exit codes by {@link run}.
 */
export function buildProgram(io: CliIo, registrars: readonly Registrar[] = []): Command {
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
        .default('warn', 'warn; info for up, relay, gateway and run'),
    )
    .addHelpText('after', HELP_FOOTER)

  const kit: CommandKit = {
    io,
    action:
      (fn) =>
      async (...args) => {
        const command = args.at(-1) as Command
        const {
          resolveConfig,
          hasPassword,
          passwordInArgvWarning,
          unknownEnvWarnings,
          Output,
          STOP_GRACE_MS,
          interruption,
          createLogger,
          logLevel,
          Session,
        } = await import('./command-deps.ts')
        const g = command.optsWithGlobals<GlobalOptions>()
        const log = createLogger(logLevel(command, g.logLevel, io.env), io.stderr, io.env)
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
            domain: g.domain,
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
          await Promise.race([fn(session, command, command.opts() as never), stop.interrupted])
        } catch (e) {
          // The one-line failure is printed by run(); the cause chain is for --log-level debug.
          log.debug({ err: e }, 'command failed')
          throw await session.rootCause(e, command.name())
        } finally {
          stop.cancel()
          // A command that stops itself on Ctrl-C has finished its own writes; any other was abandoned.
          await session.close(io.signal?.aborted === true && !SELF_STOPPING.has(command.name()))
        }
      },
  }
  for (const register of registrars) register(program, kit)
  return program
}

/** A `commands/*.ts` module's `register…` function. */
export type Registrar = (program: Command, kit: CommandKit) => void

interface LazyCommand {
  name: string
  /** What the command list shows after the name (commander's term: `[options]`, then the arguments). */
  usage: string
  summary: string
  load(): Promise<Registrar>
}

/**
 * Every command. Its module (and what it imports: PostgreSQL, NATS, pino, schemas) is loaded only when the
 * command runs or its own help is asked for, so `evtctl --help` starts fast
 * (docs/benchmarks/journal-2026-11-30-early.md, "Cold start").
 * `usage` and `summary` repeat the module's own definition: test/lazy-commands.test.ts fails when they differ.
 */
export const COMMANDS: readonly LazyCommand[] = [
  {
    name: 'migrate',
    usage: '',
    summary: 'apply the pending PostgreSQL migrations (admin URL); safe to run again',
    load: async () => (await import('./commands/migrate.ts')).registerMigrate,
  },
  {
    name: 'publish',
    usage: '[options] <stream> <type>',
    summary: 'submit an intent through the gateway (NATS request); prints event id, correlation id, version, position',
    load: async () => (await import('./commands/publish.ts')).registerPublish,
  },
  {
    name: 'read',
    usage: '[options] [stream]',
    summary: 'print the events of one stream, of one category of a tenant (--category) or of the whole log (--all)',
    load: async () => (await import('./commands/read.ts')).registerRead,
  },
  {
    name: 'streams',
    usage: '[options]',
    summary: 'list a tenant’s streams with their version (event count), last type and time, paged',
    load: async () => (await import('./commands/streams.ts')).registerStreams,
  },
  {
    name: 'tail',
    usage: '[options]',
    summary: 'print log events live as the relay publishes them (no history), until Ctrl-C or --count',
    load: async () => (await import('./commands/tail.ts')).registerTail,
  },
  {
    name: 'subscribe',
    usage: '[options] [name]',
    summary:
      'run a projection or controller of the domain by name; without a name, consume the log through a durable consumer',
    load: async () => (await import('./commands/subscribe.ts')).registerSubscribe,
  },
  {
    name: 'replay',
    usage: '[options] <projection>',
    summary:
      'rebuild a projection from the PostgreSQL log into a shadow and swap it in when complete; prints the digest',
    load: async () => (await import('./commands/replay.ts')).registerReplay,
  },
  {
    name: 'trace',
    usage: '[options] <correlation-id>',
    summary: 'show the causation tree of a correlation chain: kind, type, stream, time, indented by causation',
    load: async () => (await import('./commands/trace.ts')).registerTrace,
  },
  {
    name: 'state',
    usage: '[options] <projection>',
    summary: "print a reducer projection's current state for one tenant, one line per key",
    load: async () => (await import('./commands/state.ts')).registerState,
  },
  {
    name: 'status',
    usage: '[options]',
    summary:
      "log head, relay lag and liveness, projection checkpoints, controller lag, the log stream's fill, and what holds the gap-safe read back",
    load: async () => (await import('./commands/status.ts')).registerStatus,
  },
  {
    name: 'export',
    usage: '[options]',
    summary: 'write a tenant’s events (or one stream, or one correlation chain) as NDJSON, in log order',
    load: async () => (await import('./commands/export.ts')).registerExport,
  },
  {
    name: 'import',
    usage: '[options] <file>',
    summary:
      're-ingest one tenant’s NDJSON export; identical events already stored are skipped, different ones refused',
    load: async () => (await import('./commands/import.ts')).registerImport,
  },
  {
    name: 'heads',
    usage: '[options]',
    summary: 'print a tenant’s stream heads and one digest over them, at a point of the global order',
    load: async () => (await import('./commands/heads.ts')).registerHeads,
  },
  {
    name: 'verify',
    usage: '[options]',
    summary: 'recompute the log’s hash chains and report the first broken link of each stream',
    load: async () => (await import('./commands/verify.ts')).registerVerify,
  },
  {
    name: 'up',
    usage: '[options]',
    summary:
      "run the gateway, the relay and the domain's controllers and projections in one process (development); stops cleanly on Ctrl-C",
    load: async () => (await import('./commands/up.ts')).registerUp,
  },
  {
    name: 'relay',
    usage: '[options]',
    summary:
      'run the relay: publish the PostgreSQL log to JetStream in its order (production process; SIGTERM stops it cleanly)',
    load: async () => (await import('./commands/relay.ts')).registerRelay,
  },
  {
    name: 'gateway',
    usage: '[options]',
    summary:
      "run the intent gateway: validate intents against the domain's schemas and record them (production process; SIGTERM drains it)",
    load: async () => (await import('./commands/gateway.ts')).registerGateway,
  },
  {
    name: 'run',
    usage: '[options]',
    summary: "run the domain's controllers and projections (production process; SIGTERM stops them cleanly)",
    load: async () => (await import('./commands/run.ts')).registerRun,
  },
  {
    name: 'tenant',
    usage: '[options]',
    summary: 'add, list, rotate and revoke tenants: one NATS account each, changed live (no server restart)',
    load: async () => (await import('./commands/tenant.ts')).registerTenant,
  },
  {
    name: 'creds',
    usage: '[options]',
    summary:
      "rotate the auth dir users' NATS creds (relay, gateway, controller, operator, system); the old key is revoked live",
    load: async () => (await import('./commands/creds.ts')).registerCreds,
  },
  {
    name: 'keys',
    usage: '[options]',
    summary:
      "rotate a NATS signing key (log, system, a tenant's, the operator's) live; move the identity seeds offline and back",
    load: async () => (await import('./commands/keys.ts')).registerKeys,
  },
]

/** The whole command tree, every command module loaded (what `evtctl --help` summarizes). */
export async function buildFullProgram(io: CliIo): Promise<Command> {
  return buildProgram(io, await Promise.all(COMMANDS.map((c) => c.load())))
}

/** The command named in `argv`: the first operand after the global options (or after `help`). */
function commandIn(argv: readonly string[], program: Command): LazyCommand | undefined {
  const operands: string[] = []
  for (let i = 0; i < argv.length && operands.length < 2; i++) {
    const arg = argv[i]!
    if (arg === '--') break
    if (!arg.startsWith('-')) {
      operands.push(arg)
      if (arg !== 'help') break
      continue
    }
    const option = program.options.find((o) => o.long === arg || o.short === arg)
    if (option !== undefined && (option.required || option.optional)) i++
  }
  const name = operands[0] === 'help' ? operands[1] : operands[0]
  return COMMANDS.find((c) => c.name === name)
}

/**
 * The program for this `argv`: only the named command's module loaded, or, for `--help`, `--version`, no command
 * or an unknown one, every command as a stub with its name and summary (which commander lists and matches).
 */
async function programFor(argv: readonly string[], io: CliIo): Promise<Command> {
  const stubs = buildProgram(io)
  const command = commandIn(argv, stubs)
  if (command !== undefined) return buildProgram(io, [await command.load()])
  for (const c of COMMANDS) stubs.command(c.name).summary(c.summary)
  const usage = new Map(COMMANDS.map((c) => [c.name, c.usage]))
  return stubs.configureHelp({
    showGlobalOptions: true,
    subcommandTerm: (cmd) => {
      const args = usage.get(cmd.name())
      if (args === undefined) return new Help().subcommandTerm(cmd)
      return args === '' ? cmd.name() : `${cmd.name()} ${args}`
    },
  })
}

const HELP_CODES = new Set(['commander.helpDisplayed', 'commander.version'])

/** The help of the command `argv` names (`evtctl keys offline --help`), else of evtctl itself. */
function helpFor(program: Command, argv: readonly string[]): string {
  const names: string[] = []
  let current = program
  for (const arg of argv) {
    if (arg === '--') break
    const next = arg.startsWith('-') ? undefined : current.commands.find((c) => c.name() === arg)
    if (next === undefined) continue
    names.push(arg)
    current = next
  }
  return ['evtctl', ...names, '--help'].join(' ')
}

/**
 * Runs evtctl with `argv` (without node and script) and returns the exit
 * code. A failure writes exactly one line, `evtctl: <code>: <message>`, to stderr.
 */
export async function run(argv: readonly string[], io: CliIo): Promise<number> {
  const program = await programFor(argv, io)
  try {
    await program.parseAsync([...argv], { from: 'user' })
    return 0
  } catch (e) {
    if (e instanceof CommanderError && HELP_CODES.has(e.code)) return 0
    const [{ CliError }, { EXIT, exitCodeFor, formatFailure, toEventplaneError }] = await Promise.all([
      import('./cli-error.ts'),
      import('./exit-codes.ts'),
    ])
    if (e instanceof CommanderError) {
      // Bare `evtctl`: commander already printed the help to stderr.
      if (e.code === 'commander.help') return e.exitCode === 0 ? EXIT.ok : EXIT.usage
      const message = e.message.replace(/^error: /, '')
      io.stderr.write(formatFailure(new CliError('cli.bad_usage', `${message} (see ${helpFor(program, argv)})`)))
      return EXIT.usage
    }
    const typed = await toEventplaneError(e)
    io.stderr.write(formatFailure(typed))
    return exitCodeFor(typed)
  }
}
