import { type EventEnvelope, type EventKind, EventplaneError, isReservedCategory } from '@eventplane/core'
import { parseExportLine } from '@eventplane/store-pg'
import { CliError } from './cli-error.ts'

/** What one `evtctl import` may write: one tenant, and facts only when asked for. */
export interface ImportPolicy {
  tenant: string
  /**
   * Facts and internal events are a controller's word, and any event of a reserved category
   * (`eventplane_…`) the system's: importing them is an explicit choice.
   */
  allowFacts: boolean
}

/** How many events of one tenant and kind a file holds. */
export interface ImportCount {
  tenant: string
  kind: EventKind
  events: number
}

/**
 * One NDJSON line of an export (core's wire form) as an envelope, refused
 * when it breaks the policy: `line` numbers the error. Blank lines give
 * undefined. The server columns of an export (version, position, tx id,
 * recorded_at) are dropped: the store assigns them again.
 */
export function checkImportLine(raw: string, line: number, policy: ImportPolicy): EventEnvelope | undefined {
  if (raw.trim() === '') return undefined
  const event = parseExportLine(raw, line)
  if (event.tenant_id !== policy.tenant) {
    throw new EventplaneError(
      'core.tenant_mismatch',
      `line ${line} is an event of tenant ${event.tenant_id}, not of --tenant ${policy.tenant}`,
      { details: { expected: policy.tenant, actual: event.tenant_id, line } },
    )
  }
  if (event.kind !== 'intent' && !policy.allowFacts) {
    throw new CliError(
      'cli.bad_usage',
      `line ${line} is a ${event.kind} (${event.type}); facts and internal events are imported only with --allow-facts`,
    )
  }
  if (isReservedCategory(event.stream.category) && !policy.allowFacts) {
    throw new CliError(
      'cli.bad_usage',
      `line ${line} is in the system's category ${event.stream.category}; it is imported only with --allow-facts`,
    )
  }
  return event
}

/**
 * Checks every line of a file against `policy` before anything is written,
 * and counts its events per tenant and kind. Throws on the first bad line.
 */
export async function planImport(
  lines: AsyncIterable<string> | Iterable<string>,
  policy: ImportPolicy,
): Promise<ImportCount[]> {
  const counts = new Map<string, ImportCount>()
  let n = 0
  for await (const raw of lines) {
    n++
    const event = checkImportLine(raw, n, policy)
    if (event === undefined) continue
    const key = `${event.tenant_id}/${event.kind}`
    const count = counts.get(key) ?? { tenant: event.tenant_id, kind: event.kind, events: 0 }
    count.events++
    counts.set(key, count)
  }
  return [...counts.values()].sort((a, b) => a.tenant.localeCompare(b.tenant) || a.kind.localeCompare(b.kind))
}

/**
 * The lines of the second (writing) pass, each checked again: a file changed
 * between the passes stops the import at the first line that breaks the
 * policy instead of writing it.
 */
export async function* recheckedLines(
  lines: AsyncIterable<string> | Iterable<string>,
  policy: ImportPolicy,
): AsyncGenerator<string> {
  let n = 0
  for await (const raw of lines) {
    n++
    checkImportLine(raw, n, policy)
    yield raw
  }
}
