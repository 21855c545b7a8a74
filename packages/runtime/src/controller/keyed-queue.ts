/**
 * Runs tasks in order per key, different keys concurrently, at most
 * `concurrency` at a time. Used to keep one stream's events in order while
 * other streams go on.
 */
export class KeyedQueue {
  readonly #concurrency: number
  readonly #queues = new Map<string, (() => Promise<void>)[]>()
  readonly #ready: string[] = []
  readonly #idleWaiters: (() => void)[] = []
  #running = 0
  #size = 0

  constructor(concurrency: number) {
    if (!Number.isSafeInteger(concurrency) || concurrency < 1)
      throw new RangeError('concurrency must be a positive integer')
    this.#concurrency = concurrency
  }

  /** Tasks queued or running. */
  get size(): number {
    return this.#size
  }

  /** Queues `task` behind the other tasks of `key`. A task's rejection is its own business: catch inside. */
  push(key: string, task: () => Promise<void>): void {
    this.#size++
    const queue = this.#queues.get(key)
    if (queue) {
      queue.push(task)
      return
    }
    this.#queues.set(key, [task])
    this.#ready.push(key)
    this.#pump()
  }

  /** Resolves when nothing is queued or running. */
  idle(): Promise<void> {
    if (this.#size === 0) return Promise.resolve()
    return new Promise((resolve) => this.#idleWaiters.push(resolve))
  }

  #pump(): void {
    while (this.#running < this.#concurrency && this.#ready.length > 0) {
      const key = this.#ready.shift()!
      const task = this.#queues.get(key)![0]!
      this.#running++
      void task()
        .catch(() => {})
        .finally(() => this.#done(key))
    }
  }

  #done(key: string): void {
    this.#running--
    this.#size--
    const queue = this.#queues.get(key)!
    queue.shift()
    if (queue.length > 0) this.#ready.push(key)
    else this.#queues.delete(key)
    if (this.#size === 0) for (const resolve of this.#idleWaiters.splice(0)) resolve()
    this.#pump()
  }
}
