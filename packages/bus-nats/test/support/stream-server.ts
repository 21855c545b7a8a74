import { after, before, beforeEach } from 'node:test'
import { type JetStreamManager, jetstream, jetstreamManager } from '@nats-io/jetstream'
import { ensureStream } from '../../src/stream.ts'
import { STREAM_NAME, logSubject } from '../../src/subjects.ts'
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

/**
 * Starts a nats-server with the auth dir (`tenants` added) whose log stream holds one message (acme's, on
 * `deployment/a`): JetStream state of the log account that a key rotation or an auth dir upgrade must keep.
 */
export async function startServerWithLogMessage(tenants: string[]): Promise<TestNatsServer> {
  const server = await startNatsServer({ tenants })
  const operator = await server.connect('operator')
  await ensureStream(await jetstreamManager(operator))
  await jetstream(operator).publish(logSubject('intent', 'acme', 'deployment', 'a'), 'x')
  return server
}
