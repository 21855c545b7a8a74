import type { Domain } from '@eventplane/runtime'

/** The hold on the `held` controller (see lag-domain.js). */
export declare const hold: {
  /** Reconciles that began waiting on the hold. */
  entered: number
  /** Lets every held reconcile go on. */
  release: () => void
  released: Promise<void>
  /** Holds every later reconcile until release(). */
  engage(): void
}

/** One controller, `held`, on the `deployment` intents: each reconcile waits for the hold; a `poison` intent fails. */
declare const lagDomain: Domain
export default lagDomain
