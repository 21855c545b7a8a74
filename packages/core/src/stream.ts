import { validateCategory, validateStreamId, validateTenant } from './names.ts'

/** A stream inside one tenant: subject form `<tenant>.<category>.<id>`. */
export interface StreamRef {
  tenant: string
  category: string
  id: string
}

declare const validStream: unique symbol

/**
 * A stream reference whose names were parsed here ({@link streamRef},
 * {@link parseStream}, a subject parser built on them, or a validated
 * envelope's stream): frozen, and trusted downstream without a second parse.
 * A copy or a literal is not one; ensureStreamRef (envelope.ts) parses it.
 */
export type ValidStreamRef = Readonly<StreamRef> & { readonly [validStream]: true }

/** The references parsed in this process, by identity: a copy or a literal is not among them. */
const parsed = new WeakSet<object>()

/** A frozen reference to names already validated in this process; core's parsers only. */
export function trustedStreamRef(tenant: string, category: string, id: string): ValidStreamRef {
  const ref = Object.freeze({ tenant, category, id })
  parsed.add(ref)
  return ref as ValidStreamRef
}

/** True when `s` is a reference core parsed here (not a copy of one). */
export function isValidStreamRef(s: unknown): s is ValidStreamRef {
  return typeof s === 'object' && s !== null && parsed.has(s)
}

/** Validates every name of a stream reference: the one parse of these names here. */
export function streamRef(tenant: string, category: string, id: string): ValidStreamRef {
  return trustedStreamRef(validateTenant(tenant), validateCategory(category), validateStreamId(id))
}

/** `tenant/category/id`, the human form used in messages and the CLI. */
export function formatStream(s: StreamRef): string {
  return `${s.tenant}/${s.category}/${s.id}`
}

/** Parses `tenant/category/id` (the CLI form) into a validated stream reference. */
export function parseStream(text: string): ValidStreamRef {
  const parts = text.split('/')
  return streamRef(parts[0] ?? '', parts[1] ?? '', parts.slice(2).join('/'))
}
