/**
 * A node test reporter for scripts/test.sh: how long each file the runner started (a group: the whole group) spent
 * in its top-level tests, longest first, so whoever balances the suite sees where its time goes. Plain JavaScript:
 * node loads reporters before the --import hooks, so tsx cannot load a .ts one.
 *
 * @param {AsyncIterable<{ type: string, data: { nesting?: number, file?: string, details?: { duration_ms?: number } } }>} source
 */
import { relative } from 'node:path'

export default async function* fileTimes(source) {
  const perFile = new Map()
  for await (const { type, data } of source) {
    if ((type === 'test:pass' || type === 'test:fail') && data.nesting === 0 && data.file) {
      perFile.set(data.file, (perFile.get(data.file) ?? 0) + (data.details?.duration_ms ?? 0))
    }
  }
  yield 'seconds in top-level tests, per file the runner started:\n'
  for (const [file, ms] of [...perFile].sort((a, b) => b[1] - a[1])) {
    yield `${(ms / 1000).toFixed(1).padStart(7)}  ${relative(process.cwd(), file)}\n`
  }
}
