import { type AddressInfo, type Server, type Socket, createServer, connect } from 'node:net'
import { nextProtocolMessage as nextMessage } from '../../src/testing/index.ts'

/**
 * A loopback TCP proxy in front of a nats-server that cuts the connection
 * at a client's first JetStream ack (`PUB $JS.ACK.… <reply> …`, an ack
 * waiting for its confirmation), without forwarding that ack: a connection
 * blip with the ack in flight, so the server never has it and the message
 * stays pending. Everything else, and everything after the cut (the client
 * reconnects through the proxy), passes unchanged. Client and server are
 * the real ones; the proxy decides only where the connection breaks.
 */
export interface AckCut {
  /** `nats://127.0.0.1:<port>`: give it to the client instead of the server's URL. */
  url: string
  /** Resolves with the dropped ack's subject once the connection was cut. */
  readonly cut: Promise<string>
  /** Acks forwarded to the server after the cut. */
  readonly forwardedAcks: number
  close(): Promise<void>
}

const ACK_PREFIX = '$JS.ACK.'

/** A confirmed ack: `PUB $JS.ACK.… <reply> <size>` (a bare ack has no reply and 3 arguments). */
function isConfirmedAck(line: string): boolean {
  const args = line.split(' ')
  return args[0]!.toUpperCase() === 'PUB' && args[1]!.startsWith(ACK_PREFIX) && args.length === 4
}

export async function startAckCut(serverPort: number): Promise<AckCut> {
  const sockets = new Set<Socket>()
  let done = false
  let forwardedAcks = 0
  let resolveCut!: (subject: string) => void
  const cut = new Promise<string>((resolve) => (resolveCut = resolve))

  const proxy: Server = createServer((client) => {
    const server = connect(serverPort, '127.0.0.1')
    for (const s of [client, server]) {
      sockets.add(s)
      s.on('close', () => sockets.delete(s))
      s.on('error', () => {})
    }
    client.on('close', () => server.destroy())
    server.on('close', () => client.destroy())
    server.on('data', (chunk: Buffer) => client.write(chunk))
    let buf = Buffer.alloc(0)
    client.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk])
      for (let m = nextMessage(buf); m !== undefined; m = nextMessage(buf)) {
        if (isConfirmedAck(m.line)) {
          if (!done) {
            done = true
            client.destroy()
            server.destroy()
            resolveCut(m.line.split(' ')[1]!)
            return
          }
          forwardedAcks++
        }
        server.write(buf.subarray(0, m.length))
        buf = buf.subarray(m.length)
      }
    })
  })
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve))
  const { port } = proxy.address() as AddressInfo
  return {
    url: `nats://127.0.0.1:${port}`,
    cut,
    get forwardedAcks() {
      return forwardedAcks
    },
    async close() {
      for (const s of sockets) s.destroy()
      await new Promise<void>((resolve) => proxy.close(() => resolve()))
    },
  }
}
