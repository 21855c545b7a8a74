import { type AddressInfo, type Server, type Socket, createServer, connect } from 'node:net'
import { nextProtocolMessage as nextMessage } from '@eventplane/bus-nats/testing'

/** How a held reply ended: passed on once its client waited for the server, or dropped with the client's connection. */
export type ReplyOutcome = 'delivered' | 'dropped'

/**
 * A loopback TCP proxy in front of a nats-server that stands for a slow link
 * between a service (a gateway child process) and the server. Once armed, the
 * first reply the client publishes (a `PUB`/`HPUB` on an `_INBOX_…` subject)
 * and every byte the client sends after it are held: sent, as far as the
 * client can tell, but not at the server yet. A client that then waits for the
 * server to have everything (a `PING`: nats.js `flush()`, and `drain()` ends
 * with one) gets the held bytes passed on, its reply first; a client that
 * closes its connection instead loses them, as a process loses what its socket
 * had not written yet when it closed. Everything else passes at once; the
 * server's bytes always do.
 */
export interface ReplyGate {
  /** `nats://127.0.0.1:<port>`: give it to the client instead of the server's URL. */
  url: string
  /** Holds from the next reply the client publishes. */
  arm(): void
  /** Settles once an armed gate held a reply: `delivered` at the client's next PING, `dropped` if it closed first. */
  readonly outcome: Promise<ReplyOutcome>
  /** Drops every connection and stops listening. */
  close(): Promise<void>
}

export async function startReplyGate(serverPort: number): Promise<ReplyGate> {
  const sockets = new Set<Socket>()
  let armed = false
  /** The held bytes (from the reply on), while holding; undefined before and after. */
  let held: Buffer[] | undefined
  let settle!: (outcome: ReplyOutcome) => void
  const outcome = new Promise<ReplyOutcome>((resolve) => (settle = resolve))

  const watchClient = (client: Socket, server: Socket): void => {
    let buf = Buffer.alloc(0)
    client.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk])
      for (let m = nextMessage(buf); m !== undefined; m = nextMessage(buf)) {
        const bytes = buf.subarray(0, m.length)
        buf = buf.subarray(m.length)
        const [op, subject] = m.line.split(' ')
        const upper = op!.toUpperCase()
        if (armed && held === undefined && (upper === 'PUB' || upper === 'HPUB') && subject!.startsWith('_INBOX_')) {
          armed = false
          held = []
        }
        if (held === undefined) {
          server.write(bytes)
          continue
        }
        held.push(Buffer.from(bytes))
        if (upper === 'PING') {
          server.write(Buffer.concat(held))
          held = undefined
          settle('delivered')
        }
      }
      // An incomplete message at the end waits in `buf` for the rest, whatever the mode.
    })
    const gone = (): void => {
      if (held !== undefined) {
        held = undefined
        settle('dropped')
      }
      // What was passed on stays passed on: end, not destroy.
      server.end()
    }
    client.on('error', gone).on('close', gone)
  }

  const proxy: Server = createServer((client) => {
    const server = connect({ host: '127.0.0.1', port: serverPort })
    sockets.add(client).add(server)
    const drop = (): void => {
      client.destroy()
      server.destroy()
      sockets.delete(client)
      sockets.delete(server)
    }
    server.on('error', drop).on('close', drop)
    server.on('data', (chunk: Buffer) => void (client.destroyed || client.write(chunk)))
    watchClient(client, server)
  })
  await new Promise<void>((ready) => proxy.listen(0, '127.0.0.1', ready))
  const { port } = proxy.address() as AddressInfo
  return {
    url: `nats://127.0.0.1:${port}`,
    arm() {
      armed = true
    },
    outcome,
    async close() {
      for (const s of sockets) s.destroy()
      await new Promise<void>((done) => proxy.close(() => done()))
    },
  }
}
