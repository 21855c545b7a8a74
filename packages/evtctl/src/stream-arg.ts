import { type ValidStreamRef, TenantMismatch, parseStream } from '@eventplane/core'
import type { ResolvedConfig } from './config.ts'
import { CliError } from './cli-error.ts'

/**
 * The stream a command names: `tenant/category/id`, or `category/id` with
 * the tenant from `--tenant`, env or config. A `--tenant` flag that
 * contradicts the stream's own tenant is an error, not a silent override.
 */
export function resolveStreamArg(
  text: string,
  config: ResolvedConfig,
  options: { categoryRead?: boolean } = {},
): ValidStreamRef {
  const parts = text.split('/')
  if (parts.length === 2) {
    if (config.tenant === undefined) throw twoParts(text, parts[0]!, parts[1]!, options.categoryRead === true)
    return parseStream(`${config.tenant}/${text}`)
  }
  if (parts.length < 3)
    throw new CliError('cli.bad_usage', `stream must look like tenant/category/id, got ${JSON.stringify(text)}`)
  const ref = parseStream(text)
  if (config.sources.tenant === 'flag' && config.tenant !== ref.tenant)
    throw new TenantMismatch(config.tenant!, ref.tenant)
  return ref
}

/**
 * Two parts and no tenant configured: category/id without its tenant, or tenant/category without an id. The line
 * says what a stream is; for `read` (`categoryRead`), also how to read the category the parts may mean.
 */
function twoParts(text: string, first: string, second: string, categoryRead: boolean): CliError {
  const category = categoryRead
    ? `; to read category ${second} of tenant ${first} in log order: evtctl read --category ${second} --tenant ${first}`
    : ''
  return new CliError(
    'cli.bad_usage',
    `stream ${JSON.stringify(text)} has two parts: a stream is tenant/category/id, or category/id with --tenant${category}`,
  )
}

/** The tenant a tenant-scoped command acts for; required. */
export function requireTenant(config: ResolvedConfig, command: string): string {
  if (config.tenant === undefined) {
    throw new CliError('cli.bad_usage', `${command} needs a tenant: pass --tenant or set EVENTPLANE_TENANT`)
  }
  return config.tenant
}
