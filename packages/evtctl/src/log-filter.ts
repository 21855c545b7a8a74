import { Option } from 'commander'
import { EVENT_KINDS, type EventKind, type RecordedEvent } from '@eventplane/core'
import type { LogFilterOptions } from '@eventplane/bus-nats'
import type { ResolvedConfig } from './config.ts'

/** `--kind` and `--category`: the filter options shared by tail and subscribe. */
export function filterOptions(): Option[] {
  return [
    new Option('--kind <kind>', 'only this kind').choices(EVENT_KINDS),
    new Option('--category <category>', 'only this category'),
  ]
}

/** The subject filter from `--tenant` (or env/config), `--kind` and `--category`. */
export function logFilterFrom(config: ResolvedConfig, opts: { kind?: EventKind; category?: string }): LogFilterOptions {
  return {
    ...(config.tenant === undefined ? {} : { tenant: config.tenant }),
    ...(opts.kind === undefined ? {} : { kind: opts.kind }),
    ...(opts.category === undefined ? {} : { category: opts.category }),
  }
}

/** True when `event` is within `filter` (what a consumer with exactly that filter would deliver). */
export function eventMatches(event: RecordedEvent, filter: LogFilterOptions): boolean {
  return (
    (filter.tenant === undefined || event.tenant_id === filter.tenant) &&
    (filter.kind === undefined || event.kind === filter.kind) &&
    (filter.category === undefined || event.stream.category === filter.category)
  )
}
