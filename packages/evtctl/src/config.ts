import { existsSync, readFileSync } from 'node:fs'
import { dirname, isAbsolute, resolve } from 'node:path'
import { validateTenant } from '@eventplane/core'
import { DEFAULT_DATABASE_URL } from '@eventplane/store-pg'
import { CliError } from './cli-error.ts'
import { closest, fileModeWarning, hasPassword } from './config-warnings.ts'

/** The local NATS server; only a default, never a credential. */
export const DEFAULT_NATS_URL = 'nats://127.0.0.1:4222'
/** Read when neither `--config` nor `EVENTPLANE_CONFIG` names a file and it exists in the working directory. */
export const DEFAULT_CONFIG_FILE = 'eventplane.json'

/** How to name a domain, for the one line that says one is missing. */
export const DOMAIN_HINT = 'pass --domain <module> (or set EVENTPLANE_DOMAIN, or "domain" in the config file)'

/** A domain setting that names a file rather than a package: relative, absolute, or ending in .js/.ts. */
export function isDomainPath(spec: string): boolean {
  return spec.startsWith('.') || isAbsolute(spec) || /\.[cm]?[jt]s$/.test(spec)
}

/** Connection flags as commander parsed them (all optional). */
export interface ConfigFlags {
  config?: string
  databaseUrl?: string
  natsUrl?: string
  natsUser?: string
  natsPasswordFile?: string
  natsCreds?: string
  /** Only tenant commands read it: the operator side's NATS auth dir. */
  natsAuthDir?: string
  tenant?: string
  /** A domain module: a .js/.ts file or a package name (commands that run a domain). */
  domain?: string
}

/** Where a setting came from, shown by `status --json` and in debug logs. */
export type ConfigSource = 'flag' | 'env' | 'file' | 'default' | 'unset'

/** The settings one evtctl run uses, and where each came from. */
export interface ResolvedConfig {
  /** Admin URL (used by `migrate`); per-role URLs are derived from it with roleUrl(). */
  databaseUrl: string
  natsUrl: string
  natsUser: string | undefined
  natsPassword: string | undefined
  /** Absolute path of a NATS `.creds` file (user JWT and nkey seed): how the account model authenticates. */
  natsCreds: string | undefined
  /** Absolute path of the NATS auth dir (`tenant` commands; made by nats-setup). */
  natsAuthDir: string | undefined
  tenant: string | undefined
  /** The domain module: an absolute path, or a package name; undefined when none is configured. */
  domain: string | undefined
  /** The config file's `relay` and `gateway` objects, as written (resolved per setting by service-settings.ts). */
  sections: Readonly<Record<ServiceSection, Readonly<Record<string, unknown>>>>
  /** The config file that was read, if any. */
  configFile: string | undefined
  sources: Record<
    'databaseUrl' | 'natsUrl' | 'natsUser' | 'natsPassword' | 'natsCreds' | 'natsAuthDir' | 'tenant' | 'domain',
    ConfigSource
  >
}

/**
 * The JSON config file's keys: the connection flags but `config`, and the
 * services' sections; anything else is rejected so typos are caught.
 */
interface ConfigFile extends Omit<ConfigFlags, 'config'> {
  relay?: Record<string, unknown>
  gateway?: Record<string, unknown>
}
/** The config file's objects of service settings (`{"relay": {"batchSize": 500}}`). */
export type ServiceSection = 'relay' | 'gateway'
const SECTION_KEYS: ReadonlySet<string> = new Set<ServiceSection>(['relay', 'gateway'])
const FILE_KEYS = new Set([
  'databaseUrl',
  'natsUrl',
  'natsUser',
  'natsPasswordFile',
  'natsCreds',
  'natsAuthDir',
  'tenant',
  'domain',
])

/** The environment resolveConfig reads (injected for tests). */
export interface ResolveOptions {
  env: NodeJS.ProcessEnv
  /** Directory relative paths are resolved against (default process.cwd()). */
  cwd?: string
  /** Told about files whose mode lets others read a password or change the settings (default: ignored). */
  warn?: (message: string) => void
}

const configError = (message: string): CliError => new CliError('cli.config', message)

/**
 * The one place settings are resolved, per setting: flag, then `EVENTPLANE_*`
 * env, then the JSON config file, then the built-in local default. Passwords
 * come only from a file (`--nats-password-file`, `EVENTPLANE_NATS_PASSWORD_FILE`,
 * `natsPasswordFile` in the config file) or `EVENTPLANE_NATS_PASSWORD`; never
 * a flag (it would show in `ps`) and never a default. A creds file
 * (`--nats-creds`, `EVENTPLANE_NATS_CREDS`, `natsCreds`) replaces user and
 * password; setting both is refused.
 */
export function resolveConfig(flags: ConfigFlags, options: ResolveOptions): ResolvedConfig {
  const env = options.env
  const cwd = options.cwd ?? process.cwd()
  const warn = options.warn ?? (() => {})
  const { file, path: configFile } = loadConfigFile(flags.config ?? nonEmpty(env.EVENTPLANE_CONFIG), cwd, warn)
  const fileDir = configFile === undefined ? cwd : dirname(configFile)

  const pick = (
    flag: string | undefined,
    envValue: string | undefined,
    fileValue: string | undefined,
    fallback?: string,
  ) => {
    if (flag !== undefined) return { value: flag, source: 'flag' as const }
    if (nonEmpty(envValue) !== undefined) return { value: envValue!, source: 'env' as const }
    if (fileValue !== undefined) return { value: fileValue, source: 'file' as const }
    if (fallback !== undefined) return { value: fallback, source: 'default' as const }
    return { value: undefined, source: 'unset' as const }
  }

  const databaseUrl = pick(flags.databaseUrl, env.EVENTPLANE_DATABASE_URL, file.databaseUrl, DEFAULT_DATABASE_URL)
  const natsUrl = pick(flags.natsUrl, env.EVENTPLANE_NATS_URL, file.natsUrl, DEFAULT_NATS_URL)
  const natsUser = pick(flags.natsUser, env.EVENTPLANE_NATS_USER, file.natsUser)
  const tenant = pick(flags.tenant, env.EVENTPLANE_TENANT, file.tenant)
  const password = resolvePassword(flags, env, file, cwd, fileDir, warn)
  // Paths: relative to the working directory (flag, env) or to the config file's directory (file).
  const path = (p: { value: string | undefined; source: ConfigSource }) =>
    p.value === undefined ? undefined : resolve(p.source === 'file' ? fileDir : cwd, p.value)
  const natsCreds = pick(flags.natsCreds, env.EVENTPLANE_NATS_CREDS, file.natsCreds)
  const natsAuthDir = pick(flags.natsAuthDir, env.EVENTPLANE_NATS_AUTH_DIR, file.natsAuthDir)
  const domain = pick(flags.domain, env.EVENTPLANE_DOMAIN, file.domain)
  if (natsCreds.value !== undefined && (natsUser.value !== undefined || password.value !== undefined))
    throw configError('both a NATS creds file and a NATS user or password are set; set only one')

  const credsFile = path(natsCreds)
  const credsWarning = credsFile === undefined ? undefined : fileModeWarning(credsFile, 'creds file', true)
  if (credsWarning) warn(credsWarning)

  checkUrl('database URL', databaseUrl.value!, ['postgres:', 'postgresql:'])
  checkUrl('NATS URL', natsUrl.value!, ['nats:', 'tls:', 'ws:', 'wss:'])
  if (tenant.value !== undefined) validateTenant(tenant.value)

  return {
    databaseUrl: databaseUrl.value!,
    natsUrl: natsUrl.value!,
    natsUser: natsUser.value,
    natsPassword: password.value,
    natsCreds: credsFile,
    natsAuthDir: path(natsAuthDir),
    tenant: tenant.value,
    // A file path is taken relative to where it was given; a package name is kept as it is.
    domain: domain.value !== undefined && isDomainPath(domain.value) ? path(domain) : domain.value,
    sections: { relay: file.relay ?? {}, gateway: file.gateway ?? {} },
    configFile,
    sources: {
      databaseUrl: databaseUrl.source,
      natsUrl: natsUrl.source,
      natsUser: natsUser.source,
      natsPassword: password.source,
      natsCreds: natsCreds.source,
      natsAuthDir: natsAuthDir.source,
      tenant: tenant.source,
      domain: domain.source,
    },
  }
}

function nonEmpty(s: string | undefined): string | undefined {
  return s === undefined || s === '' ? undefined : s
}

function loadConfigFile(
  named: string | undefined,
  cwd: string,
  warn: (message: string) => void,
): { file: ConfigFile; path: string | undefined } {
  const path = resolve(cwd, named ?? DEFAULT_CONFIG_FILE)
  if (named === undefined && !existsSync(path)) return { file: {}, path: undefined }
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (e) {
    throw configError(`cannot read config file ${path} (${(e as NodeJS.ErrnoException).code ?? 'error'})`)
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (e) {
    throw configError(`config file ${path} is not valid JSON: ${(e as Error).message}`)
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw configError(`config file ${path} must hold a JSON object`)
  for (const [key, value] of Object.entries(parsed)) {
    if (SECTION_KEYS.has(key)) {
      if (typeof value !== 'object' || value === null || Array.isArray(value))
        throw configError(`config file ${path}: ${key} must be an object of ${key} settings`)
      continue
    }
    if (!FILE_KEYS.has(key)) {
      const guess = closest(key, [...FILE_KEYS, ...SECTION_KEYS])
      const hint =
        key === 'natsPassword'
          ? ' (put the password in a file and use natsPasswordFile)'
          : guess === undefined
            ? ''
            : ` (did you mean ${JSON.stringify(guess)}?)`
      throw configError(`config file ${path}: unknown key ${JSON.stringify(key)}${hint}`)
    }
    if (typeof value !== 'string' || value === '')
      throw configError(`config file ${path}: ${key} must be a non-empty string`)
  }
  const file = parsed as ConfigFile
  const modeWarning = fileModeWarning(path, 'config file', hasPassword(file.databaseUrl) || hasPassword(file.natsUrl))
  if (modeWarning) warn(modeWarning)
  return { file, path }
}

function resolvePassword(
  flags: ConfigFlags,
  env: NodeJS.ProcessEnv,
  file: ConfigFile,
  cwd: string,
  fileDir: string,
  warn: (message: string) => void,
): { value: string | undefined; source: ConfigSource } {
  if (flags.natsPasswordFile !== undefined)
    return { value: readSecret(resolve(cwd, flags.natsPasswordFile), warn), source: 'flag' }
  const envFile = nonEmpty(env.EVENTPLANE_NATS_PASSWORD_FILE)
  const envPlain = nonEmpty(env.EVENTPLANE_NATS_PASSWORD)
  if (envFile !== undefined && envPlain !== undefined) {
    throw configError('both EVENTPLANE_NATS_PASSWORD_FILE and EVENTPLANE_NATS_PASSWORD are set; set only one')
  }
  if (envFile !== undefined) return { value: readSecret(resolve(cwd, envFile), warn), source: 'env' }
  if (envPlain !== undefined) return { value: envPlain, source: 'env' }
  if (file.natsPasswordFile !== undefined)
    return { value: readSecret(resolve(fileDir, file.natsPasswordFile), warn), source: 'file' }
  return { value: undefined, source: 'unset' }
}

/** A password file's content without its trailing newline; its path (not content) appears in errors. */
function readSecret(path: string, warn: (message: string) => void): string {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (e) {
    throw configError(`cannot read password file ${path} (${(e as NodeJS.ErrnoException).code ?? 'error'})`)
  }
  const secret = text.replace(/\r?\n$/, '')
  if (secret === '') throw configError(`password file ${path} is empty`)
  const modeWarning = fileModeWarning(path, 'password file', true)
  if (modeWarning) warn(modeWarning)
  return secret
}

function checkUrl(what: string, value: string, protocols: string[]): void {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw configError(`${what} is not a URL`)
  }
  if (!protocols.includes(url.protocol))
    throw configError(`${what} must start with ${protocols.map((p) => `${p}//`).join(' or ')}`)
}
