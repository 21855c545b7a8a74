import { logPublishReply, onProtocolMessages } from './nats-frames.ts'
import { startNatsProxy } from './nats-proxy.ts'

/**
 * A loopback TCP proxy in front of a nats-server that lets a client's first
 * `allow` JetStream acks of log publishes through and then holds everything
 * the server sends it: the client (a relay child process) has published more
 * than it has heard acked, and stays exactly there, whatever the timing. The
 * client's own bytes always pass at once, so the server stores every publish;
 * the proxy only decides which acks the client gets.
 *
 * It reads the NATS protocol on both directions: a `PUB`/`HPUB` on a log
 * subject (`eventplane.…`) with a reply subject is a publish, and a
 * `MSG`/`HMSG` to one of those reply subjects is its ack.
 */
export interface AckGate {
  /** `nats://127.0.0.1:<port>`: give it to the client instead of the server's URL. */
  url: string
  /** Log publishes the client has sent through the proxy (all forwarded). */
  readonly published: number
  /** Acks of those the client was let through. */
  readonly acked: number
  /** True once an ack is held back (the client has seen its `allow` acks and waits for the next). */
  readonly holding: boolean
  /**
   * Resolves when the first ack is held back, in the same turn of the test process's event loop:
   * freeze the client there, before its own ack timeout can notice the silence.
   */
  readonly held: Promise<void>
  /** Drops every connection and stops listening. */
  close(): Promise<void>
}

export async function startAckGate(serverPort: number, allow: number): Promise<AckGate> {
  const replies = new Set<string>()
  let published = 0
  let acked = 0
  let holding = false
  let hold!: () => void
  const held = new Promise<void>((resolve) => (hold = resolve))

  const proxy = await startNatsProxy(serverPort, (client, server) => {
    // Client → server: forwarded as it comes; the log publishes' reply subjects are noted.
    client.on('data', (chunk: Buffer) => server.write(chunk))
    onProtocolMessages(client, (line) => {
      const reply = logPublishReply(line)
      if (reply !== undefined) {
        replies.add(reply)
        published++
      }
    })
    // Server → client: forwarded message by message until the first ack past `allow`; from then on nothing.
    onProtocolMessages(server, (line, bytes) => {
      if (holding) return
      const [op, subject] = line.split(' ')
      const msg = op!.toUpperCase()
      if ((msg === 'MSG' || msg === 'HMSG') && replies.delete(subject!)) {
        if (acked === allow) {
          holding = true
          hold()
          return
        }
        acked++
      }
      client.write(bytes)
    })
  })
  return {
    url: proxy.url,
    get published() {
      return published
    },
    get acked() {
      return acked
    },
    get holding() {
      return holding
    },
    held,
    close: () => proxy.close(),
  }
}
