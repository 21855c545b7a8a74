import { statSync } from 'node:fs'

/**
 * Every `EVENTPLANE_*` variable some eventplane process reads (evtctl and its
 * service commands, the scripts and tests). Anything else under
 * the prefix is most likely a typo that would silently fall back to a default.
 */
export const KNOWN_ENV = [
  'EVENTPLANE_CONFIG',
  'EVENTPLANE_DATABASE_URL',
  'EVENTPLANE_NATS_URL',
  'EVENTPLANE_NATS_USER',
  'EVENTPLANE_NATS_PASSWORD',
  'EVENTPLANE_NATS_PASSWORD_FILE',
  'EVENTPLANE_NATS_CREDS',
  'EVENTPLANE_NATS_AUTH_DIR',
  'EVENTPLANE_NATS_SERVER_BIN',
  'EVENTPLANE_TENANT',
  'EVENTPLANE_DOMAIN',
  'EVENTPLANE_LOG_LEVEL',
  'EVENTPLANE_RELAY_NAME',
  'EVENTPLANE_RELAY_BATCH_SIZE',
  'EVENTPLANE_RELAY_MAX_IN_FLIGHT',
  'EVENTPLANE_RELAY_POLL_MS',
  'EVENTPLANE_RELAY_DUPLICATE_WINDOW_MS',
  'EVENTPLANE_RELAY_STUCK_AFTER_MS',
  'EVENTPLANE_RELAY_TERMINATE_STUCK',
  'EVENTPLANE_RELAY_HEADS_EVERY_MS',
  'EVENTPLANE_RELAY_HEADS_SIGN_KEY',
  'EVENTPLANE_GATEWAY_QUEUE',
  'EVENTPLANE_GATEWAY_RATE',
  'EVENTPLANE_GATEWAY_BURST',
  'EVENTPLANE_GATEWAY_BYTE_RATE',
  'EVENTPLANE_GATEWAY_BURST_BYTES',
  'EVENTPLANE_GATEWAY_TENANT_MAX_IN_FLIGHT',
  'EVENTPLANE_GATEWAY_TENANT_MAX_BYTES',
  'EVENTPLANE_GATEWAY_TENANT_CONCURRENCY',
  'EVENTPLANE_GATEWAY_MAX_IN_FLIGHT',
  'EVENTPLANE_GATEWAY_MAX_BYTES',
  'EVENTPLANE_GATEWAY_CONCURRENCY',
  'EVENTPLANE_GATEWAY_REFUSAL_HOLD_MS',
  'EVENTPLANE_GATEWAY_TENANT_LIMITS',
  'EVENTPLANE_OPS_PORT',
  'EVENTPLANE_OPS_HOST',
  'EVENTPLANE_METRICS_TENANT_CAP',
  'EVENTPLANE_STREAM_MAX_BYTES',
  'EVENTPLANE_STREAM_MAX_AGE_MS',
  'EVENTPLANE_STREAM_MAX_MSG_SIZE',
  'EVENTPLANE_BENCH_URL',
  'EVENTPLANE_FUZZ_SEED',
  'EVENTPLANE_FUZZ_RUNS',
]

/** `EVENTPLANE_DATABASE_URL_<ROLE>` overrides one role's URL (roleUrl()). */
const ROLE_SUFFIXES = ['OWNER', 'INTENT_WRITER', 'FACT_WRITER', 'READER', 'RELAY', 'OPERATOR', 'PROJECTOR', 'GUARD']
const ROLE_URL_PREFIX = 'EVENTPLANE_DATABASE_URL_'
/** `EVENTPLANE_NATS_PASSWORD_<USER>`: per-user passwords of the generated NATS config (any user name). */
const NATS_PASSWORD_PREFIX = 'EVENTPLANE_NATS_PASSWORD_'

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const current = [i]
    for (let j = 1; j <= b.length; j++)
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1))
    previous = current
  }
  return previous[b.length]!
}

/** The candidate `name` most likely meant (case aside, a few edits at most), if any. */
export function closest(name: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined
  let bestDistance = Math.max(2, Math.floor(name.length / 4)) + 1
  for (const c of candidates) {
    const d = c.toLowerCase() === name.toLowerCase() ? 0 : editDistance(name.toUpperCase(), c.toUpperCase())
    if (d < bestDistance) {
      best = c
      bestDistance = d
    }
  }
  return best
}

/** One warning per `EVENTPLANE_*` variable no eventplane process reads, with the likely intended name. */
export function unknownEnvWarnings(env: NodeJS.ProcessEnv): string[] {
  const warnings: string[] = []
  const roleUrls = ROLE_SUFFIXES.map((r) => ROLE_URL_PREFIX + r)
  for (const name of Object.keys(env).sort()) {
    if (!name.startsWith('EVENTPLANE_') || KNOWN_ENV.includes(name) || roleUrls.includes(name)) continue
    if (name.startsWith(NATS_PASSWORD_PREFIX) && name.length > NATS_PASSWORD_PREFIX.length) continue
    const guess = closest(name, [...KNOWN_ENV, ...roleUrls])
    warnings.push(
      `${name} is not a setting eventplane knows, so it is ignored${guess ? ` (did you mean ${guess}?)` : ''}`,
    )
  }
  return warnings
}

/** Whether a URL carries a password (`user:password@`). */
export function hasPassword(url: string | undefined): boolean {
  if (url === undefined) return false
  try {
    return new URL(url).password !== ''
  } catch {
    return false
  }
}

/**
 * A warning for a password given in a flag's URL: every user of the machine
 * can read a process's arguments (`ps`, /proc/<pid>/cmdline).
 */
export function passwordInArgvWarning(flag: string, env: string): string {
  return `the URL of ${flag} holds a password, which other users can read in ps and /proc/<pid>/cmdline: set ${env} instead, or put the URL in a config file only you can read (chmod 600)`
}

/**
 * Like ssh: a secret file (password file, NATS creds file) readable by group or others, or
 * a config file others may change or, when it holds a password, read.
 * Undefined when the mode is fine or cannot be read (the read itself reports that).
 */
export function fileModeWarning(
  path: string,
  kind: 'password file' | 'config file' | 'creds file',
  holdsSecret: boolean,
): string | undefined {
  let mode: number
  try {
    mode = statSync(path).mode & 0o777
  } catch {
    return undefined
  }
  const octal = `0${mode.toString(8).padStart(3, '0')}`
  if (kind === 'config file' && (mode & 0o022) !== 0)
    return `config file ${path} is writable by group or others (mode ${octal}): anyone who can change it can point evtctl at another server; chmod 600 ${path}`
  if (kind === 'creds file' && (mode & 0o077) !== 0)
    return `NATS creds file ${path} holds a user's secret key and is readable by group or others (mode ${octal}); chmod 600 ${path}`
  if ((kind === 'password file' || holdsSecret) && (mode & 0o077) !== 0)
    return `${kind} ${path} holds a password and is readable by group or others (mode ${octal}); chmod 600 ${path}`
  return undefined
}
