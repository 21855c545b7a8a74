#!/usr/bin/env node
import { guardUncaughtExceptions, guardUnhandledRejections } from './process-guards.ts'
import { run } from './program.ts'

// The process edge: the only place evtctl touches process.exit and signals.
const controller = new AbortController()
let interrupts = 0
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    interrupts += 1
    // A second Ctrl-C means "now": skip the clean shutdown.
    if (interrupts > 1) process.exit(130)
    // Aborted here and now, not after an import: on a loaded machine tsx's loader can take seconds to
    // answer one, and the command's own connect timeout would fail it first (exit 3 instead of 130).
    controller.abort(new DOMException(`interrupted by ${signal}`, 'AbortError'))
    void lastResort()
  })
}

/**
 * Imported here, not at startup: `evtctl --help` loads nothing but commander
 * (docs/benchmarks/journal-2026-11-30-early.md, "Cold start").
 */
async function lastResort(): Promise<void> {
  const { STOP_GRACE_MS } = await import('./interrupt.ts')
  // Should closing connections itself hang after the command stopped.
  setTimeout(() => process.exit(130), STOP_GRACE_MS + 5000).unref()
}

guardUnhandledRejections(process.stderr, (code) => process.exit(code))
guardUncaughtExceptions(process.stderr, (code) => process.exit(code))

// A reader that went away (`evtctl read … | head -1`) ends the command quietly, as psql and head do.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0)
  throw e
})
process.stderr.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code !== 'EPIPE') throw e
})

const code = await run(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  // Lazy: touching process.stdin opens a handle, and only `publish --data -` needs it.
  get stdin() {
    return process.stdin
  },
  signal: controller.signal,
})
// Exit once stdout is flushed, so a lingering socket can never keep the CLI alive.
process.stdout.write('', () => process.exit(code))
