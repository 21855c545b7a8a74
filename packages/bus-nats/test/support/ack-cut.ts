import { onProtocolMessages, startNatsProxy } from '../../src/testing/index.ts'

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
  let done = false
  let forwardedAcks = 0
  let resolveCut!: (subject: string) => void
  const cut = new Promise<string>((resolve) => (resolveCut = resolve))

  const proxy = await startNatsProxy(serverPort, (client, server) => {
    server.on('data', (chunk: Buffer) => client.write(chunk))
    onProtocolMessages(client, (line, bytes) => {
      if (isConfirmedAck(line)) {
        if (!done) {
          done = true
          client.destroy()
          server.destroy()
          resolveCut(line.split(' ')[1]!)
          return
        }
        forwardedAcks++
      }
      server.write(bytes)
    })
  })
  return {
    url: proxy.url,
    cut,
    get forwardedAcks() {
      return forwardedAcks
    },
    close: () => proxy.close(),
  }
}
