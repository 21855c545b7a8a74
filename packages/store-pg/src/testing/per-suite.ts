import { after, before } from 'node:test'

/**
 * A resource made once for the enclosing `describe` (`before`) and disposed
 * after it (`after`, even when a test failed or `create` threw half way).
 * Returns a stand-in that reads through to the resource, usable from the
 * `before` hooks declared after this call on; the resource must be a plain
 * object (its methods are called with the stand-in as `this`). Its `after`
 * runs before those declared later (node:test runs them in order), so a suite
 * that stops other things on it stops them in its own `after` first.
 */
export function perSuite<T extends object>(create: () => Promise<T>, dispose: (value: T) => Promise<unknown>): T {
  let value: T | undefined
  before(async () => {
    value = await create()
  })
  after(async () => {
    if (value !== undefined) await dispose(value)
  })
  return new Proxy({} as T, {
    get(_, key) {
      if (value === undefined) throw new Error(`read ${String(key)} before the suite's resource was made`)
      return Reflect.get(value, key)
    },
  })
}
