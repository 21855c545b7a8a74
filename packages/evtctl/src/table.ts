/**
 * Aligned columns for human output: every column but the last is padded to
 * its widest cell, two spaces apart; the last (free text such as event data)
 * is never padded. Widths count UTF-16 units, which is exact for the padded
 * columns: names, ids, positions and times are ASCII by the naming rules.
 */
export function alignRows(rows: readonly (readonly string[])[]): string[] {
  const widths: number[] = []
  for (const row of rows) for (let i = 0; i < row.length - 1; i++) widths[i] = Math.max(widths[i] ?? 0, row[i]!.length)
  return rows.map((row) =>
    row
      .map((cell, i) => (i < row.length - 1 ? cell.padEnd(widths[i]!) : cell))
      .join('  ')
      .trimEnd(),
  )
}
