import { type Command, Option } from 'commander'
import { CliError } from './cli-error.ts'
import type { ConfigSource, ResolvedConfig, ServiceSection } from './config.ts'
import { closest } from './config-warnings.ts'

/** How a setting's text (flag, env) or JSON value (config file) is read. */
type SettingKind =
  | { type: 'int'; min?: number; maxDigits?: number }
  | { type: 'bool' }
  | { type: 'rate' }
  | { type: 'name' }
  | { type: 'path' }
  | { type: 'tenantLimits' }

/**
 * One tunable setting of a service command: its flag (attribute `key`),
 * `EVENTPLANE_*` variable and key in the config file's section. Resolved
 * like every other setting: flag, then env, then config file, then default.
 */
export interface SettingSpec {
  key: string
  flag: string
  env: string
  kind: SettingKind
  help: string
}

const configError = (message: string): CliError => new CliError('cli.config', message)

/** The commander options of `specs` (values stay text until resolveSettings reads them). */
export function settingOptions(specs: readonly SettingSpec[]): Option[] {
  return specs.map((s) =>
    s.kind.type === 'bool'
      ? new Option(s.flag, `${s.help} (env ${s.env})`)
      : new Option(`${s.flag} <value>`, `${s.help} (env ${s.env})`),
  )
}

/** Resolved settings: each value (undefined when nowhere set; the library's default applies) and its source. */
export interface ResolvedSettings {
  values: Record<string, unknown>
  sources: Record<string, ConfigSource>
}

/**
 * Resolves `specs` for a service command: the command's flags, then the
 * environment, then `section` of the config file; a malformed value is
 * `cli.config` naming where it came from, and so is an unknown key in the
 * config file's section (with the closest known one).
 */
export function resolveSettings(
  specs: readonly SettingSpec[],
  section: ServiceSection,
  command: Command,
  config: ResolvedConfig,
  env: NodeJS.ProcessEnv,
): ResolvedSettings {
  const file = config.sections[section]
  const where = config.configFile === undefined ? 'config file' : `config file ${config.configFile}`
  const known = new Set(specs.map((s) => s.key))
  for (const key of Object.keys(file)) {
    if (!known.has(key)) {
      const guess = closest(key, known)
      throw configError(
        `${where}: unknown ${section} setting ${JSON.stringify(key)}${guess ? ` (did you mean ${JSON.stringify(guess)}?)` : ''}`,
      )
    }
  }
  const flags = command.opts<Record<string, unknown>>()
  const values: Record<string, unknown> = {}
  const sources: Record<string, ConfigSource> = {}
  for (const spec of specs) {
    const flag = command.getOptionValueSource(spec.key) === 'cli' ? flags[spec.key] : undefined
    const fromEnv = env[spec.env]
    if (flag !== undefined) {
      values[spec.key] = read(spec, flag, spec.flag)
      sources[spec.key] = 'flag'
    } else if (fromEnv !== undefined && fromEnv !== '') {
      values[spec.key] = read(spec, fromEnv, spec.env)
      sources[spec.key] = 'env'
    } else if (file[spec.key] !== undefined) {
      values[spec.key] = read(spec, file[spec.key], `${where}: ${section}.${spec.key}`)
      sources[spec.key] = 'file'
    } else sources[spec.key] = 'unset'
  }
  return { values, sources }
}

/** One value of `spec` from `where`: text (a flag or env variable) or a JSON value (the config file). */
function read(spec: SettingSpec, value: unknown, where: string): unknown {
  const kind = spec.kind
  const text = typeof value === 'string' ? value : undefined
  switch (kind.type) {
    case 'bool':
      if (value === true || text === 'true' || text === '1') return true
      if (value === false || text === 'false' || text === '0') return false
      throw configError(`${where} must be true or false, got ${JSON.stringify(value)}`)
    case 'int': {
      const min = kind.min ?? 1
      const digits = kind.maxDigits ?? 9
      const n = typeof value === 'number' ? value : text !== undefined && /^\d+$/.test(text) ? Number(text) : Number.NaN
      if (!Number.isSafeInteger(n) || n < min || String(n).length > digits)
        throw configError(`${where} must be an integer of at least ${min}, got ${JSON.stringify(value)}`)
      return n
    }
    case 'rate': {
      if (value === 'unlimited') return Number.POSITIVE_INFINITY
      const n =
        typeof value === 'number' ? value : text !== undefined && /^\d{1,9}(\.\d{1,6})?$/.test(text) ? Number(text) : 0
      if (!(n > 0) || !Number.isFinite(n))
        throw configError(`${where} must be a positive number or unlimited, got ${JSON.stringify(value)}`)
      return n
    }
    case 'name':
      if (text === undefined || !/^[A-Za-z0-9_-]{1,64}$/.test(text))
        throw configError(`${where} must be 1 to 64 ASCII letters, digits, _ and -, got ${JSON.stringify(value)}`)
      return text
    case 'path':
      if (text === undefined || text === '')
        throw configError(`${where} must be a file path, got ${JSON.stringify(value)}`)
      return text
    case 'tenantLimits':
      return tenantLimits(value, where)
  }
}

const TENANT_LIMIT_KEYS: ReadonlySet<string> = new Set([
  'ratePerSecond',
  'burst',
  'bytesPerSecond',
  'burstBytes',
  'maxInFlight',
  'maxBytesInFlight',
  'maxConcurrent',
])

/**
 * Named tenants' own limits: `{"acme":{"ratePerSecond":500,"burst":1000}}`,
 * as JSON text (flag, env) or an object (config file); `"unlimited"` lifts a
 * rate. The numbers are checked by the gateway's resolveLimits.
 */
function tenantLimits(value: unknown, where: string): Record<string, Record<string, number>> {
  const bad = (why: string) => configError(`${where}: ${why}`)
  let parsed = value
  if (typeof value === 'string') {
    try {
      parsed = JSON.parse(value)
    } catch {
      throw bad('not JSON')
    }
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw bad('must be a JSON object')
  const out: Record<string, Record<string, number>> = {}
  for (const [tenant, limits] of Object.entries(parsed)) {
    if (typeof limits !== 'object' || limits === null || Array.isArray(limits))
      throw bad(`the limits of ${JSON.stringify(tenant)} must be an object`)
    const own: Record<string, number> = {}
    for (const [name, limit] of Object.entries(limits)) {
      if (!TENANT_LIMIT_KEYS.has(name)) throw bad(`unknown limit ${JSON.stringify(name)}`)
      if ((name === 'ratePerSecond' || name === 'bytesPerSecond') && limit === 'unlimited')
        own[name] = Number.POSITIVE_INFINITY
      else if (typeof limit === 'number') own[name] = limit
      else throw bad(`${tenant}.${name} must be a number`)
    }
    out[tenant] = own
  }
  return out
}
