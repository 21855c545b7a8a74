#!/usr/bin/env node
/**
 * Prepares a NATS deployment: `npx nats-setup --help` where @eventplane/bus-nats is installed (the published
 * package's bin), `pnpm exec tsx packages/bus-nats/src/bin/nats-setup.ts --help` in this repository.
 * Exits 0 on success, 1 with one message on stderr otherwise.
 */
import { isEventplaneError } from '@eventplane/core'
import { natsSetupMain } from '../nats-config/setup-cli.ts'

try {
  process.exitCode = await natsSetupMain(process.argv.slice(2))
} catch (e) {
  // One line, with the code when it is one of ours (as evtctl prints its failures).
  const what = isEventplaneError(e) ? `${e.code}: ${e.message}` : e instanceof Error ? e.message : String(e)
  process.stderr.write(`nats-setup: ${what.split('\n')[0]}\n`)
  process.exitCode = 1
}
