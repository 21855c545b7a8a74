import { type Command, InvalidArgumentError, Option } from 'commander'
import type { CliIo } from './io.ts'
import type { Session } from './session.ts'

/** A command body: gets the open session, the commander command (for its args) and the command's options. */
export type Action<O = Record<string, unknown>> = (session: Session, command: Command, opts: O) => Promise<void>

/** What each `commands/*.ts` registrar receives. */
export interface CommandKit {
  io: CliIo
  /** Wraps an action: resolves config, opens a session, always closes it. */
  action<O = Record<string, unknown>>(fn: Action<O>): (...args: unknown[]) => Promise<void>
}

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

/** The `--domain` option, for commands that run a domain's schemas, controllers or projections. */
export function domainOption(): Option {
  return new Option(
    '--domain <module>',
    'domain module: a .js/.ts file or a package name exporting defineDomain(…) (env EVENTPLANE_DOMAIN, config key domain)',
  )
}

/** The text after a command's own help: a blank line, then `lines` (notes, `Examples:`, `  $ evtctl …`). */
export function helpAfter(...lines: string[]): string {
  return ['', ...lines].join('\n')
}
