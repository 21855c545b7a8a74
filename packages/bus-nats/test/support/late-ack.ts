import type { Socket } from 'node:net'
import { logPublishReply, onProtocolMessages } from '../../src/testing/nats-frames.ts'
import { startNatsProxy } from '../../src/testing/nats-proxy.ts'

/** A proxy that delays one JetStream ack for as long as the test wants (see {@link holdOneAck}). */
export interface LateAck {
  /** `nats://127.0.0.1:<port>`: give it to the client instead of the server's URL. */
  url: string
  /** Resolves once the server's ack of the publish is held: the stream has stored it, the client not heard so. */
  held: Promise<void>
  /** Sends the held ack on to the client, after everything the server sent meanwhile. */
  release(): void
  /** Drops every connection and stops listening. */
  close(): Promise<void>
}

/**
 * A loopback TCP proxy in front of a nats-server that holds the server's ack of the client's log publish number
 * `nth` (0 for the first `PUB`/`HPUB` on `eventplane.…` with a reply subject) until `release()`, and passes
 * every other byte of both directions at once: the stream stores that publish and acks the others in time, and
 * the one ack comes as late as the test chooses (after the publisher's deadline for it, say).
 */
export async function holdOneAck(serverPort: number, nth: number): Promise<LateAck> {
  let publishes = 0
  let reply: string | undefined
  let heldAck: { client: Socket; bytes: Buffer } | undefined
  let released = false
  let hold!: () => void
  const held = new Promise<void>((resolve) => (hold = resolve))
  const proxy = await startNatsProxy(serverPort, (client, server) => {
    client.on('data', (chunk: Buffer) => server.write(chunk))
    onProtocolMessages(client, (line) => {
      const replyTo = logPublishReply(line)
      if (replyTo !== undefined && publishes++ === nth) reply = replyTo
    })
    onProtocolMessages(server, (line, bytes) => {
      const [op, subject] = line.split(' ')
      const msg = op!.toUpperCase()
      if ((msg === 'MSG' || msg === 'HMSG') && subject === reply && heldAck === undefined && !released) {
        heldAck = { client, bytes: Buffer.from(bytes) }
        hold()
        return
      }
      client.write(bytes)
    })
  })
  return {
    url: proxy.url,
    held,
    release() {
      released = true
      if (heldAck !== undefined && !heldAck.client.destroyed) heldAck.client.write(heldAck.bytes)
    },
    close: () => proxy.close(),
  }
}
