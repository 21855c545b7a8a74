/**
 * An intent gateway process: `tsx packages/bus-nats/src/bin/gateway.ts`, configured by
 * the environment (see resolveGatewayConfig). Exits 0 after SIGTERM/SIGINT, 1 on a fatal error.
 */
import { runGatewayProcess } from '../gateway-process.ts'

process.exitCode = await runGatewayProcess()
