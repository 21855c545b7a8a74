/** One hunk of a unified diff: the file it changes and the lines its new side shows. */
export interface PatchHunk {
  /** The path after `+++ b/`, relative to the package. */
  file: string
  /** Its `@@` line, to name it. */
  header: string
  /** The new side, context and added lines in order: applied, the file holds this text. */
  after: string
  /** Its added lines alone. */
  added: string[]
}

/**
 * The hunks of a unified diff (`git diff`, what `pnpm patch-commit` writes). Each hunk is read by the line counts
 * of its `@@ -a,b +c,d @@` header, so a removed or added line that looks like a file header is read as what it is.
 */
export function patchHunks(patch: string): PatchHunk[] {
  const lines = patch.split('\n')
  const hunks: PatchHunk[] = []
  let file: string | undefined
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!
    if (line.startsWith('+++ b/')) {
      file = line.slice('+++ b/'.length)
      continue
    }
    const counts = /^@@ -\d+(?:,(\d+))? \+\d+(?:,(\d+))? @@/.exec(line)
    if (counts === null) continue
    if (file === undefined) throw new Error(`line ${i + 1}: a hunk before any +++ b/ file header`)
    let oldLeft = Number(counts[1] ?? 1)
    let newLeft = Number(counts[2] ?? 1)
    const after: string[] = []
    const added: string[] = []
    while (oldLeft > 0 || newLeft > 0) {
      const body = lines[++i]
      if (body === undefined) throw new Error(`${file} ${line}: the patch ends inside the hunk`)
      if (body.startsWith('\\')) continue // "\ No newline at end of file"
      const mark = body[0]
      const text = body.slice(1)
      if (mark === '+') {
        newLeft--
        after.push(text)
        added.push(text)
      } else if (mark === '-') oldLeft--
      else if (mark === ' ' || body === '') {
        oldLeft--
        newLeft--
        after.push(text)
      } else throw new Error(`${file} ${line}: not a hunk line: ${JSON.stringify(body)}`)
    }
    hunks.push({ file, header: line, after: after.join('\n'), added })
  }
  return hunks
}
