/**
 * A node test reporter for scripts/test.sh: for each test file, the seconds its top-level tests took and how many
 * top-level tests it reported (`seconds count path` a line), longest first. The seconds tell whoever balances the
 * suite where its time goes (scripts/test-durations.txt, which scripts/test-plan.ts packs the groups by, is a copy);
 * the count is what scripts/test-counts-check.mjs compares with what the file declares. One reporter for both: node
 * 20's runner pipes each --test-reporter from the same stream, and a third one (tap, this, a counts reporter of its
 * own) was one listener too many for it (MaxListenersExceededWarning: 11 end listeners added to [TestsStream]).
 * Plain JavaScript: node loads reporters before the --import hooks, so tsx cannot load a .ts one.
 *
 * @param {AsyncIterable<{ type: string, data: { nesting?: number, file?: string, details?: { duration_ms?: number } } }>} source
 */
import { relative } from 'node:path'

export default async function* fileTimes(source) {
  /** @type {Map<string, { ms: number, tests: number }>} */
  const perFile = new Map()
  for await (const { type, data } of source) {
    if ((type === 'test:pass' || type === 'test:fail') && data.nesting === 0 && data.file) {
      const file = perFile.get(data.file) ?? { ms: 0, tests: 0 }
      file.ms += data.details?.duration_ms ?? 0
      file.tests += 1
      perFile.set(data.file, file)
    }
  }
  yield 'seconds in top-level tests and how many it reported, per test file:\n'
  for (const [file, { ms, tests }] of [...perFile].sort((a, b) => b[1].ms - a[1].ms)) {
    yield `${(ms / 1000).toFixed(1).padStart(7)} ${String(tests).padStart(4)}  ${relative(process.cwd(), file)}\n`
  }
}
