/**
 * A node test reporter for scripts/test.sh: how many top-level tests each test file reported (`N path` a line), for
 * scripts/test-counts-check.mjs to compare with what the file declares. Plain JavaScript, as scripts/test-times.mjs.
 *
 * @param {AsyncIterable<{ type: string, data: { nesting?: number, file?: string } }>} source
 */
import { relative } from 'node:path'

export default async function* topLevelCounts(source) {
  const perFile = new Map()
  for await (const { type, data } of source) {
    if ((type === 'test:pass' || type === 'test:fail') && data.nesting === 0 && data.file) {
      perFile.set(data.file, (perFile.get(data.file) ?? 0) + 1)
    }
  }
  for (const [file, n] of perFile) yield `${n} ${relative(process.cwd(), file)}\n`
}
