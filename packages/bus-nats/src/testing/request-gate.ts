import { onProtocolMessages } from './nats-frames.ts'
import { startNatsProxy } from './nats-proxy.ts'

/**
 * A loopback TCP proxy in front of a nats-server that holds the server's
 * replies to the client's requests on some subjects (a JetStream API request:
 * `$JS.API.STREAM.INFO.EVENTPLANE`, `$JS.API.STREAM.MSG.GET.EVENTPLANE`, …)
 * until `release()`: the server did what was asked, the client has not heard
 * of it, and waits exactly there, whatever the timing. Everything else passes
 * at once both ways (the client's bytes, the server's other messages, its
 * PINGs and PONGs), so the connection stays healthy.
 *
 * It reads the NATS protocol on both directions: a `PUB`/`HPUB` on a matching
 * subject with a reply subject is a request, and a `MSG`/`HMSG` to one of
 * those reply subjects is its reply.
 */
export interface RequestGate {
  /** `nats://127.0.0.1:<port>`: give it to the client instead of the server's URL. */
  url: string
  /** The subjects of the requests seen so far on held subjects, in order. */
  readonly requests: readonly string[]
  /** True while a reply is held back. */
  readonly holding: boolean
  /** Resolves with the request's subject when the first reply is held back. */
  readonly held: Promise<string>
  /** Passes the held replies on, and every later one at once. */
  release(): void
  /** Drops every connection and stops listening. */
  close(): Promise<void>
}

/** Holds the replies to requests on subjects that start with `subjectPrefix` (see RequestGate). */
export async function startRequestGate(serverPort: number, subjectPrefix: string): Promise<RequestGate> {
  /** Reply subject → request subject, for the requests whose reply is to be held. */
  const replies = new Map<string, string>()
  const requests: string[] = []
  const heldBytes: Array<{ client: { write(b: Buffer): unknown; destroyed: boolean }; bytes: Buffer }> = []
  let released = false
  let hold!: (subject: string) => void
  const held = new Promise<string>((resolve) => (hold = resolve))

  const proxy = await startNatsProxy(serverPort, (client, server) => {
    client.on('data', (chunk: Buffer) => server.write(chunk))
    onProtocolMessages(client, (line) => {
      const args = line.split(' ')
      const op = args[0]!.toUpperCase()
      // PUB <subject> <reply> <size>, HPUB <subject> <reply> <hdr> <total>: a reply subject only when 4 / 5 args.
      const withReply = args.length === (op === 'HPUB' ? 5 : 4)
      if ((op === 'PUB' || op === 'HPUB') && withReply && args[1]!.startsWith(subjectPrefix)) {
        replies.set(args[2]!, args[1]!)
        requests.push(args[1]!)
      }
    })
    onProtocolMessages(server, (line, bytes) => {
      const [op, subject] = line.split(' ')
      const msg = op!.toUpperCase()
      const request = msg === 'MSG' || msg === 'HMSG' ? replies.get(subject!) : undefined
      if (request !== undefined && !released) {
        replies.delete(subject!)
        heldBytes.push({ client, bytes: Buffer.from(bytes) })
        hold(request)
        return
      }
      client.write(bytes)
    })
  })
  return {
    url: proxy.url,
    requests,
    get holding() {
      return heldBytes.length > 0
    },
    held,
    release() {
      released = true
      for (const { client, bytes } of heldBytes.splice(0)) if (!client.destroyed) client.write(bytes)
    },
    close: () => proxy.close(),
  }
}
