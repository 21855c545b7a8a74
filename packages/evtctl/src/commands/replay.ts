import type { Command } from 'commander'
import { formatCheckpoint } from '@eventplane/core'
import { PROJECTOR_ROLE, type RebuildResult, rebuildProjection } from '@eventplane/runtime'
import { findProjection } from '../domain.ts'
import { type CommandKit, domainOption } from '../command-kit.ts'
import { progressReporter } from '../progress.ts'

/** `evtctl replay <projection>`: drop a projection's output and rebuild it from the log, then print its digest. */
export function registerReplay(program: Command, kit: CommandKit): void {
  program
    .command('replay')
    .description("drop a projection's output and rebuild it from the PostgreSQL log; prints the digest of the result")
    .argument('<projection>', "projection name (one of the domain's)")
    .addOption(domainOption())
    .addHelpText(
      'after',
      [
        '',
        'Progress goes to stderr: a bar with rate and ETA on a terminal, a plain line per second otherwise.',
        'Equal digests prove a rebuilt projection equals the live one. Runs as eventplane_projector.',
        '',
        'Examples:',
        '  $ evtctl replay deployment_status --domain @eventplane/example-deployments',
        '  $ evtctl replay audit --domain ./domain.js --json | jq -r .digest.sha256',
      ].join('\n'),
    )
    .action(
      kit.action(async (session, command) => {
        const projection = findProjection(await session.domain('replay'), command.args[0]!)
        const progress = progressReporter(session.io.stderr)
        session.log.info({ projection: projection.name, version: projection.version }, 'replaying')
        let result: RebuildResult
        try {
          result = await rebuildProjection({
            projection,
            sql: session.pg(PROJECTOR_ROLE, 4),
            logger: session.log,
            onProgress: (p) => progress.update(p),
            ...(session.signal ? { signal: session.signal } : {}),
          })
        } finally {
          progress.stop()
        }
        const digest = result.digest
        session.log.info(
          { projection: result.projection, events: result.events, checkpoint: formatCheckpoint(result.checkpoint) },
          'replayed',
        )
        session.out.emit(
          {
            projection: result.projection,
            version: result.version,
            events: result.events,
            elapsed_ms: Math.round(result.elapsedMs),
            rate: Math.round(result.rate),
            checkpoint: formatCheckpoint(result.checkpoint),
            digest: digest ?? null,
          },
          () => [
            `replayed ${result.projection} v${result.version}: ${result.events} events in ${(result.elapsedMs / 1000).toFixed(2)} s (${Math.round(result.rate)} events/s)`,
            `checkpoint ${formatCheckpoint(result.checkpoint)}`,
            digest ? `digest sha256:${digest.sha256} (${digest.rows} rows)` : 'digest (not computed)',
          ],
        )
      }),
    )
}
