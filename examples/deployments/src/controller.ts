import type { RecordedEvent } from '@eventplane/core'
import {
  type Controller,
  RESOURCE_FACTS,
  type ReconcileContext,
  addFinalizer,
  completeDeletion,
  readyToDelete,
  removeFinalizer,
  requestDeletion,
  resourceStateOf,
  setStatus,
} from '@eventplane/runtime'
import { DEPLOYMENT } from './schemas.ts'

/** Finalizers the controller puts on every deployment and removes itself while deleting it. */
export const DEPLOYMENT_FINALIZERS = ['dns-cleanup', 'volume-cleanup'] as const

/**
 * The example controller. `create` → `scheduled`, both finalizers, status
 * `running`; `scale` → `scaled`; `delete` → `deletion_requested`, status
 * `terminating`, then its own finalizers removed one by one. The `deleted`
 * fact is emitted by whichever event makes the deployment ready to delete
 * (its last finalizer removed, by this controller or anyone else), so it
 * waits for foreign finalizers too and is emitted exactly once.
 */
export const deploymentsController: Controller = {
  name: 'deployments',
  kinds: ['intent', 'fact'],
  categories: [DEPLOYMENT],
  types: ['create', 'scale', 'delete', RESOURCE_FACTS.deletionRequested, RESOURCE_FACTS.finalizerRemoved],
  async reconcile(event, ctx) {
    const history = await ctx.history()
    const before = history.filter((e) => e.stream_version < event.stream_version)
    if (event.kind === 'intent') return reconcileIntent(event, before, ctx)
    // A fact: did this very event make the deployment ready to delete?
    if (readyToDelete(resourceStateOf(history)) && !readyToDelete(resourceStateOf(before))) {
      const stream = event.stream
      const state = resourceStateOf(history)
      await ctx.emit(
        setStatus(ctx.factory, stream, 'deleted', 'finalizers-done', { eventId: ctx.id('status-deleted') }),
        completeDeletion(ctx.factory, stream, state, { eventId: ctx.id('deleted') }),
      )
    }
  },
}

/**
 * Intents are decided on the intents before them, which a retry sees the same
 * way; facts this controller has not emitted yet may still be missing from
 * that history (an intent can be appended before the previous one is reconciled).
 */
async function reconcileIntent(event: RecordedEvent, before: RecordedEvent[], ctx: ReconcileContext): Promise<void> {
  const stream = event.stream
  const intents = before.filter((e) => e.kind === 'intent')
  const created = intents.some((e) => e.type === 'create')
  if (
    intents.some((e) => e.type === 'delete') ||
    (event.type !== 'create' && !created) ||
    (event.type === 'create' && created)
  ) {
    ctx.log.info(
      { event_id: event.event_id, type: event.type },
      'intent does not apply to the deployment as it is; ignored',
    )
    return
  }
  switch (event.type) {
    case 'create': {
      const { image, replicas } = event.data as { image: string; replicas: number }
      // Two appends on purpose: a crash between them is repaired by the retry, which replays the first.
      await ctx.emit(ctx.fact('scheduled', { image, replicas }))
      await ctx.emit(
        ...DEPLOYMENT_FINALIZERS.map((f) =>
          addFinalizer(ctx.factory, stream, f, { eventId: ctx.id(`finalizer-${f}`) }),
        ),
        setStatus(ctx.factory, stream, 'running', 'scheduled', { eventId: ctx.id('status-running') }),
      )
      return
    }
    case 'scale': {
      const last = intents.findLast((e) => e.type === 'create' || e.type === 'scale')!
      const previous = (last.data as { replicas: number }).replicas
      await ctx.emit(ctx.fact('scaled', { replicas: (event.data as { replicas: number }).replicas, previous }))
      return
    }
    case 'delete': {
      await ctx.emit(
        requestDeletion(ctx.factory, stream, { eventId: ctx.id('deletion-requested') }),
        setStatus(ctx.factory, stream, 'terminating', 'delete-requested', { eventId: ctx.id('status-terminating') }),
      )
      // Cleanup of what each finalizer guards would happen here; then the finalizer goes.
      // The create was reconciled before this intent (one stream, in order), so both were added.
      for (const f of DEPLOYMENT_FINALIZERS) {
        await ctx.emit(removeFinalizer(ctx.factory, stream, f, { eventId: ctx.id(`remove-${f}`) }))
      }
      return
    }
  }
}
