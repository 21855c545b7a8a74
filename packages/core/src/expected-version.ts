/**
 * Optimistic concurrency for an append: the stream's exact last version
 * (0 = empty), `no_stream` (the stream must be empty) or `any` (no check).
 */
export type ExpectedVersion = number | 'no_stream' | 'any'

/** The rule, as every refusal of a bad expected version says it (store, gateway, CLI). */
export const EXPECTED_VERSION_RULE = "expectedVersion must be a non-negative integer, 'no_stream' or 'any'"

/** The one rule for an expected version, wherever it arrives (an append, a gateway request). */
export function isExpectedVersion(value: unknown): value is ExpectedVersion {
  return (
    value === 'any' || value === 'no_stream' || (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0)
  )
}

/** The text form (a CLI flag): digits, `no_stream` or `any`; undefined for anything else. */
export function expectedVersionFromText(text: string): ExpectedVersion | undefined {
  if (text === 'any' || text === 'no_stream') return text
  if (/^\d{1,15}$/.test(text)) return Number(text)
  return undefined
}
