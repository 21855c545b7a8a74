import { type Checkpoint, EventplaneError, formatCheckpoint } from '@eventplane/core'

/**
 * The stored checkpoint is not the one this worker last wrote: another runner
 * or a rebuild moved it; or a live batch would move it past an event it was
 * not delivered (`gap`: delivered and logged counts differ). The worker
 * discards what it staged and catches up from PostgreSQL again; nothing was written.
 */
export class CheckpointMoved extends EventplaneError {
  constructor(
    projection: string,
    expected: Checkpoint,
    actual: Checkpoint | undefined,
    gap?: { delivered: number; logged: number },
  ) {
    super(
      'runtime.checkpoint_moved',
      gap
        ? `live events of projection ${projection} skip ${gap.logged - gap.delivered} logged event(s) after its checkpoint`
        : `checkpoint of projection ${projection} moved`,
      {
        details: {
          projection,
          expected: formatCheckpoint(expected),
          actual: actual ? formatCheckpoint(actual) : null,
          ...(gap ? { delivered: gap.delivered, logged: gap.logged } : {}),
        },
      },
    )
  }
}

/** Deletion cannot complete while finalizers are left (or was never requested). */
export class FinalizersPending extends EventplaneError {
  constructor(stream: string, finalizers: string[]) {
    super(
      'runtime.finalizers_pending',
      `stream ${stream} cannot be deleted while finalizers are left: ${finalizers.join(', ') || '(deletion not requested)'}`,
      {
        details: { stream, finalizers },
      },
    )
  }
}

/** A projection's reducer or SQL apply threw on an event; the runner stops at that event. */
export class ProjectionFailed extends EventplaneError {
  constructor(projection: string, eventId: string, position: Checkpoint, cause: unknown) {
    super(
      'runtime.handler_failed',
      `projection ${projection} failed on event ${eventId} at ${formatCheckpoint(position)}`,
      {
        cause,
        details: { projection, event_id: eventId, checkpoint: formatCheckpoint(position) },
      },
    )
  }
}

/**
 * A SQL projection's `setup` created no table in the shadow schema a rebuild
 * gave it: it names its tables with a schema. Rebuilt in place it would serve
 * partial output, so it is refused; name the tables unqualified (the runtime
 * sets `search_path` to eventplane_views, or to the shadow while rebuilding).
 */
export class ProjectionNotShadowable extends EventplaneError {
  constructor(projection: string) {
    super(
      'runtime.projection_not_shadowable',
      `SQL projection ${projection} created no table in its rebuild schema: name its tables without a schema`,
      { details: { projection } },
    )
  }
}
