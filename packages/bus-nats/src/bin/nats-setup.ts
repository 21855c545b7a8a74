#!/usr/bin/env node
/**
 * Prepares a NATS deployment: `npx nats-setup --help` where @eventplane/bus-nats is installed (the published
 * package's bin), `pnpm exec tsx packages/bus-nats/src/bin/nats-setup.ts --help` in this repository.
 * Exits 0 on success, 1 with one message on stderr otherwise.
 */
import { natsSetupMain } from '../nats-config/setup-cli.ts'

try {
  process.exitCode = await natsSetupMain(process.argv.slice(2))
} catch (e) {
  process.stderr.write(`nats-setup: ${e instanceof Error ? e.message : String(e)}\n`)
  process.exitCode = 1
}
