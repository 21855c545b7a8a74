import { validateCategory, validateStreamId, validateTenant } from './names.ts'

/** A stream inside one tenant: subject form `<tenant>.<category>.<id>`. */
export interface StreamRef {
  tenant: string
  category: string
  id: string
}

/** Validates every name of a stream reference and returns a clean copy. */
export function streamRef(tenant: string, category: string, id: string): StreamRef {
  return { tenant: validateTenant(tenant), category: validateCategory(category), id: validateStreamId(id) }
}

/** `tenant/category/id`, the human form used in messages and the CLI. */
export function formatStream(s: StreamRef): string {
  return `${s.tenant}/${s.category}/${s.id}`
}

/** Parses `tenant/category/id` (the CLI form) into a validated stream reference. */
export function parseStream(text: string): StreamRef {
  const parts = text.split('/')
  return streamRef(parts[0] ?? '', parts[1] ?? '', parts.slice(2).join('/'))
}
