import { after, before, beforeEach } from 'node:test'
import { type JetStreamManager, jetstreamManager } from '@nats-io/jetstream'
import { STREAM_NAME } from '../../src/subjects.ts'
import { type TestNatsServer, startNatsServer } from '../../src/testing/index.ts'

/**
 * A nats-server (tenant `acme`) for the enclosing `describe` and the operator's JetStream manager on it, the
 * log's stream (EVENTPLANE) deleted before each test so each makes its own. Reading either before the suite
 * started throws.
 */
export function useStreamServer(): { readonly server: TestNatsServer; readonly operator: JetStreamManager } {
  let server: TestNatsServer | undefined
  let operator: JetStreamManager | undefined
  before(async () => {
    server = await startNatsServer({ tenants: ['acme'] })
    operator = await jetstreamManager(await server.connect('operator'))
  })
  after(async () => {
    await server?.stop()
  })
  beforeEach(async () => {
    await operator!.streams.delete(STREAM_NAME).catch(() => false)
  })
  const made = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`read ${what} before the suite's nats-server was started`)
    return value
  }
  return {
    get server() {
      return made(server, 'the server')
    },
    get operator() {
      return made(operator, 'the operator')
    },
  }
}
