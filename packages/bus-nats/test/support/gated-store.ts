import type { StreamRef, ValidEnvelope } from '@eventplane/core'
import { type AppendOptions, type AppendResult, PgEventStore } from '@eventplane/store-pg'

/**
 * A real store whose appends can be held per tenant (a latch, not a mock):
 * requests then stay in flight for as long as the test wants, and the order
 * in which the gateway started them is recorded (`<tenant>:<data.n>`).
 */
export class GatedStore extends PgEventStore {
  readonly started: string[] = []
  readonly #gates = new Map<string, { open: Promise<void>; release: () => void }>()

  hold(tenant: string): void {
    let release!: () => void
    const open = new Promise<void>((resolve) => (release = resolve))
    this.#gates.set(tenant, { open, release })
  }

  release(tenant: string): void {
    this.#gates.get(tenant)?.release()
    this.#gates.delete(tenant)
  }

  override async append(stream: StreamRef, events: readonly ValidEnvelope[], options?: AppendOptions) {
    this.started.push(`${stream.tenant}:${(events[0]!.data as { n?: number }).n}`)
    await this.#gates.get(stream.tenant)?.open
    return super.append(stream, events, options) as Promise<AppendResult>
  }
}
