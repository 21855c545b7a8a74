// Plain JavaScript, typed by lag-domain.d.ts: `evtctl status --domain` loads it in each of the test's status
// processes, and a TypeScript domain makes every such start register tsx (about 0.6 s of CPU more each).
import { defineDomain } from '@eventplane/runtime'

/**
 * The hold on the `held` controller: every reconcile waits until the test
 * releases it (or the runner stops). `entered` counts reconciles that began
 * waiting, so a test knows the hold is in effect without sleeping.
 */
export const hold = {
  entered: 0,
  release: () => {},
  released: Promise.resolve(),
  /** Holds every later reconcile until release(). */
  engage() {
    this.released = new Promise((resolve) => (this.release = resolve))
  },
}

/**
 * The domain of the controller lag tests: one controller, `held`, on the
 * `deployment` intents, whose reconcile does nothing but wait for the hold
 * (and fails on a `poison` intent, which parks it).
 * `evtctl status --domain` loads it only for its controllers' names.
 */
export default defineDomain({
  name: 'ops_lag',
  controllers: [
    {
      name: 'held',
      categories: ['deployment'],
      async reconcile(event, ctx) {
        // Not transient: the runner parks it at once (reconcile_failed).
        if (event.type === 'poison') throw new Error('a poison event')
        hold.entered += 1
        let onAbort = () => {}
        const stopped = new Promise((resolve) => (onAbort = resolve))
        ctx.signal.addEventListener('abort', onAbort, { once: true })
        await Promise.race([hold.released, stopped]).finally(() => ctx.signal.removeEventListener('abort', onAbort))
      },
    },
  ],
})
