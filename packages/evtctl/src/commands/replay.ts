import type { Command } from 'commander'
import { formatCheckpoint } from '@eventplane/core'
import { PROJECTOR_ROLE, type RebuildResult, rebuildProjection } from '@eventplane/runtime'
import { projectionRebuildProgress } from '@eventplane/store-pg'
import { CliError } from '../cli-error.ts'
import { findProjection } from '../domain.ts'
import { type CommandKit, domainOption, intOption, helpAfter } from '../command-kit.ts'
import { progressReporter } from '../progress.ts'

/**
 * `evtctl replay <projection>`: rebuild a projection from the log into a
 * shadow, swap it in when complete, and print its digest. An interrupted
 * rebuild is resumed by default.
 */
export function registerReplay(program: Command, kit: CommandKit): void {
  program
    .command('replay')
    .description(
      'rebuild a projection from the PostgreSQL log into a shadow and swap it in when complete; prints the digest',
    )
    .argument('<projection>', "projection name (one of the domain's)")
    .addOption(domainOption())
    .option('--restart', 'throw an interrupted rebuild away and start from the beginning of the log')
    .option(
      '--commit-every <n>',
      'commit the rebuild at least every n events (bounds each transaction and what an interruption loses)',
      intOption('--commit-every', 1),
    )
    .addHelpText(
      'after',
      helpAfter(
        'Progress goes to stderr: a bar with rate and ETA on a terminal, a plain line per second otherwise.',
        'Until the rebuild completes, `state` and digests keep serving the previous complete output. Ctrl-C',
        'stops after the current commit (exit 130); the next `replay` resumes from there, `--restart` starts over.',
        'Equal digests prove a rebuilt projection equals the live one. Runs as eventplane_projector.',
        '',
        'Examples:',
        '  $ evtctl replay deployment_status --domain @eventplane/example-deployments',
        '  $ evtctl replay audit --domain ./domain.js --restart --commit-every 50000',
        '  $ evtctl replay audit --domain ./domain.js --json | jq -r .digest.sha256',
      ),
    )
    .action(
      kit.action<{ restart?: boolean; commitEvery?: number }>(async (session, command, opts) => {
        const projection = findProjection(await session.domain('replay'), command.args[0]!)
        const sql = session.pg(PROJECTOR_ROLE, 4)
        const progress = progressReporter(session.io.stderr)
        const signal = session.signal
        const onAbort = (): void =>
          session.log.warn({ projection: projection.name }, 'replay interrupted, stopping after the current commit')
        signal?.addEventListener('abort', onAbort, { once: true })
        session.log.info({ projection: projection.name, version: projection.version }, 'replaying')
        let result: RebuildResult
        try {
          result = await rebuildProjection({
            projection,
            sql,
            logger: session.log,
            restart: opts.restart === true,
            ...(opts.commitEvery === undefined ? {} : { commitEvery: opts.commitEvery }),
            onProgress: (p) => progress.update(p),
            ...(signal ? { signal } : {}),
          })
        } catch (e) {
          if (signal?.aborted) {
            const r = await projectionRebuildProgress(sql, projection.name).catch(() => undefined)
            const at = r ? ` at ${formatCheckpoint(r.checkpoint)} after ${r.events} events` : ''
            throw new CliError(
              'cli.interrupted',
              `replay of ${projection.name} interrupted${at}; the previous complete output still serves; ` +
                `run \`evtctl replay ${projection.name}\` to resume (or --restart to start over)`,
              { cause: e },
            )
          }
          throw e
        } finally {
          signal?.removeEventListener('abort', onAbort)
          progress.stop()
        }
        const digest = result.digest
        session.log.info(
          { projection: result.projection, events: result.events, checkpoint: formatCheckpoint(result.checkpoint) },
          'replayed',
        )
        const how = result.resumed ? `resumed after ${result.eventsBefore} events, ` : ''
        session.out.emit(
          {
            projection: result.projection,
            version: result.version,
            generation: result.generation,
            resumed: result.resumed,
            events_before: result.eventsBefore,
            events: result.events,
            elapsed_ms: Math.round(result.elapsedMs),
            rate: Math.round(result.rate),
            checkpoint: formatCheckpoint(result.checkpoint),
            digest: digest ?? null,
          },
          () => [
            `replayed ${result.projection} v${result.version} (${how}generation ${result.generation}): ${result.events} events in ${(result.elapsedMs / 1000).toFixed(2)} s (${Math.round(result.rate)} events/s)`,
            `checkpoint ${formatCheckpoint(result.checkpoint)}`,
            digest ? `digest sha256:${digest.sha256} (${digest.rows} rows)` : 'digest (not computed)',
          ],
        )
      }),
    )
}
