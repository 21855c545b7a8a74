import { defineDomain } from '@eventplane/runtime'

/**
 * The hold on the `held` controller: every reconcile waits until the test
 * releases it (or the runner stops). `entered` counts reconciles that began
 * waiting, so a test knows the hold is in effect without sleeping.
 */
export const hold = {
  entered: 0,
  release: (): void => {},
  released: Promise.resolve(),
  /** Holds every later reconcile until release(). */
  engage(): void {
    this.released = new Promise<void>((resolve) => (this.release = resolve))
  },
}

/**
 * The domain of the controller lag tests: one controller, `held`, on the
 * `deployment` intents, whose reconcile does nothing but wait for the hold.
 * `evtctl status --domain` loads it only for its controllers' names.
 */
export default defineDomain({
  name: 'ops_lag',
  controllers: [
    {
      name: 'held',
      categories: ['deployment'],
      async reconcile(_event, ctx) {
        hold.entered += 1
        let onAbort = (): void => {}
        const stopped = new Promise<void>((resolve) => (onAbort = resolve))
        ctx.signal.addEventListener('abort', onAbort, { once: true })
        await Promise.race([hold.released, stopped]).finally(() => ctx.signal.removeEventListener('abort', onAbort))
      },
    },
  ],
})
