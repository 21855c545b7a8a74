/**
 * A relay process: `tsx packages/bus-nats/src/bin/relay.ts`, configured by the
 * environment (see resolveRelayConfig). Exits 0 after SIGTERM/SIGINT, 1 on a fatal error.
 */
import { runRelayProcess } from '../relay-process.ts'

process.exitCode = await runRelayProcess()
