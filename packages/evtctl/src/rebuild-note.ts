import { formatCheckpoint } from '@eventplane/core'
import type { ProjectionRebuild } from '@eventplane/store-pg'

/** A rebuild as `status --json` shows it (and rebuildNote reads it): counts and positions as decimal strings. */
export interface RebuildReport {
  generation: number
  version: number
  checkpoint: string
  events: string
  remaining?: string
  updated_at: string
}

/** store-pg's rebuild row in its report form; `remaining` when the caller counted it. */
export function rebuildReport(r: ProjectionRebuild & { remaining: number }): RebuildReport & { remaining: string }
export function rebuildReport(r: ProjectionRebuild): RebuildReport
export function rebuildReport(r: ProjectionRebuild & { remaining?: number }): RebuildReport {
  return {
    generation: r.generation,
    version: r.version,
    checkpoint: formatCheckpoint(r.checkpoint),
    events: r.events.toString(),
    ...(r.remaining === undefined ? {} : { remaining: r.remaining.toString() }),
    updated_at: r.updatedAt.toISOString(),
  }
}

/** One line on a rebuild in progress or interrupted: what serves meanwhile and how to resume. */
export function rebuildNote(
  name: string,
  r: Pick<RebuildReport, 'version' | 'checkpoint' | 'events' | 'updated_at' | 'remaining'>,
): string {
  const left = r.remaining === undefined ? '' : `, ${r.remaining} to go`
  return (
    `rebuild of v${r.version} in progress or interrupted (${r.events} events done${left}, at ${r.checkpoint}, ` +
    `last commit ${r.updated_at}); the previous complete output serves until it finishes: ` +
    `\`evtctl replay ${name}\` resumes it, --restart starts over`
  )
}
