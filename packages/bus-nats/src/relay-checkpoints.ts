import type { Checkpoint } from '@eventplane/core'

/**
 * Writes the relay's checkpoint in the background while the next batch
 * publishes, at most one write in flight: a checkpoint set meanwhile waits,
 * and a newer one replaces it (only the latest acked position matters). A
 * failed write (the lease lost, PostgreSQL down) is thrown by the next `set`
 * or `flush`. The stored checkpoint only ever trails what was acked, so a
 * restarted relay, which resumes after the stream's last message (see
 * resumePoint), republishes nothing and never skips.
 */
export class CheckpointWriter {
  readonly #write: (c: Checkpoint) => Promise<void>
  #inFlight: Promise<void> | undefined
  #queued: Checkpoint | undefined
  #failure: { error: unknown } | undefined

  /** `write` stores one checkpoint, throwing when it cannot (nothing stored). */
  constructor(write: (c: Checkpoint) => Promise<void>) {
    this.#write = write
  }

  /** Stores `c` soon; throws the failure of an earlier write, if any. */
  set(c: Checkpoint): void {
    this.#throwFailure()
    if (this.#inFlight !== undefined) {
      this.#queued = c
      return
    }
    this.#inFlight = this.#run(c)
  }

  /** Resolves once every checkpoint set so far is stored; throws a failed write's error. */
  async flush(): Promise<void> {
    while (this.#inFlight !== undefined) await this.#inFlight
    this.#throwFailure()
  }

  /** Waits until no write is in flight, dropping any failure and what was queued: nothing is written after this. */
  async settle(): Promise<void> {
    this.#queued = undefined
    while (this.#inFlight !== undefined) await this.#inFlight
    this.#failure = undefined
    this.#queued = undefined
  }

  async #run(first: Checkpoint): Promise<void> {
    try {
      for (let next: Checkpoint | undefined = first; next !== undefined; ) {
        await this.#write(next)
        next = this.#queued
        this.#queued = undefined
      }
    } catch (error) {
      this.#failure ??= { error }
      this.#queued = undefined
    } finally {
      this.#inFlight = undefined
    }
  }

  #throwFailure(): void {
    const failure = this.#failure
    if (failure === undefined) return
    this.#failure = undefined
    throw failure.error
  }
}
