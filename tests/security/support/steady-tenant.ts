import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { EventFactory } from '@eventplane/core'
import { submitIntent, subscribe, tail } from '@eventplane/bus-nats'
import { jetstream } from '@nats-io/jetstream'
import type { NatsConnection } from '@nats-io/transport-node'
import { eventually } from '../../../packages/bus-nats/test/fixtures.ts'

/** One tenant submitting intents one after another at a steady pace, and consuming them twice (pull and tail). */
export class SteadyTenant {
  readonly submitted: string[] = []
  readonly pulled: string[] = []
  readonly tailed: string[] = []
  readonly errors: string[] = []
  #stopped = false
  #done: Promise<void> | undefined

  constructor(
    readonly nc: NatsConnection,
    readonly tenant: string,
  ) {
    void (async () => {
      for await (const s of nc.status()) if (s.type !== 'ping') this.errors.push(`connection ${s.type}`)
    })()
  }

  async start(): Promise<void> {
    const pull = await subscribe(jetstream(this.nc), { consumer: `${this.tenant}_tail` })
    const live = await tail(this.nc, { tenant: this.tenant })
    void (async () => {
      for await (const d of pull) {
        this.pulled.push(d.event.event_id)
        await d.ack()
      }
    })().catch((e: unknown) => this.errors.push(`pull: ${String(e)}`))
    void (async () => {
      for await (const e of live) this.tailed.push(e.event_id)
    })().catch((e: unknown) => this.errors.push(`tail: ${String(e)}`))
    const factory = EventFactory.forTenant(this.tenant, { causedBy: 'user:steady' })
    this.#done = (async () => {
      for (let i = 0; !this.#stopped; i++) {
        const event = factory.intent({ category: 'deployment', id: `steady-${i % 5}` }, 'scaled', { i })
        try {
          await submitIntent(this.nc, event, { timeoutMs: 5000 })
          this.submitted.push(event.event_id)
        } catch (e) {
          this.errors.push(`submit: ${String(e)}`)
        }
        await sleep(20) // a steady rate, not an ordering device
      }
      await sleep(0)
    })()
    this.stopPull = () => Promise.all([pull.stop(), live.stop()]).then(() => {})
  }

  stopPull: () => Promise<void> = async () => {}

  async stop(): Promise<void> {
    this.#stopped = true
    await this.#done
  }

  /**
   * Stops submitting and consuming, for a test's cleanup: after a failed assertion a tenant left submitting keeps
   * the test file's process alive until its timeout. Safe after {@link assertUndisturbed}.
   */
  async close(): Promise<void> {
    await this.stop()
    const stopPull = this.stopPull
    this.stopPull = async () => {}
    await stopPull()
  }

  /**
   * Stops submitting, waits for both consumers to get what was submitted, and asserts the tenant went on
   * undisturbed: no error, its consumer got every event in order once, its tail every event in order.
   */
  async assertUndisturbed(): Promise<void> {
    await this.stop()
    const all = [...this.submitted]
    await eventually(
      () => this.pulled.length >= all.length && this.tailed.length >= all.length,
      `${this.tenant} to consume`,
    )
    const stopPull = this.stopPull
    this.stopPull = async () => {}
    await stopPull()
    assert.deepEqual(this.errors, [], `${this.tenant} saw no error`)
    assert.deepEqual(this.pulled, all, 'its consumer got every event, in order, once')
    assert.deepEqual(this.tailed, all, 'its tail got every event, in order')
  }
}
