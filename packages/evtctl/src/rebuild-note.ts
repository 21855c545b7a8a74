/** One line on a rebuild in progress or interrupted: what serves meanwhile and how to resume. */
export function rebuildNote(
  name: string,
  r: { version: number; checkpoint: string; events: string; updated_at: string; remaining?: string },
): string {
  const left = r.remaining === undefined ? '' : `, ${r.remaining} to go`
  return (
    `rebuild of v${r.version} in progress or interrupted (${r.events} events done${left}, at ${r.checkpoint}, ` +
    `last commit ${r.updated_at}); the previous complete output serves until it finishes: ` +
    `\`evtctl replay ${name}\` resumes it, --restart starts over`
  )
}
