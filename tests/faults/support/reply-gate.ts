import { onProtocolMessages, startNatsProxy } from '@eventplane/bus-nats/testing'

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
  let armed = false
  /** The held bytes (from the reply on), while holding; undefined before and after. */
  let held: Buffer[] | undefined
  let settle!: (outcome: ReplyOutcome) => void
  const outcome = new Promise<ReplyOutcome>((resolve) => (settle = resolve))

  const proxy = await startNatsProxy(serverPort, (client, server) => {
    server.on('data', (chunk: Buffer) => void (client.destroyed || client.write(chunk)))
    // An incomplete message at the end of a chunk waits for the rest, whatever the mode.
    onProtocolMessages(client, (line, bytes) => {
      const [op, subject] = line.split(' ')
      const upper = op!.toUpperCase()
      if (armed && held === undefined && (upper === 'PUB' || upper === 'HPUB') && subject!.startsWith('_INBOX_')) {
        armed = false
        held = []
      }
      if (held === undefined) {
        server.write(bytes)
        return
      }
      held.push(Buffer.from(bytes))
      if (upper === 'PING') {
        server.write(Buffer.concat(held))
        held = undefined
        settle('delivered')
      }
    })
    // The proxy ends the server side (what was passed on stays passed on); what is still held is lost.
    const gone = (): void => {
      if (held !== undefined) {
        held = undefined
        settle('dropped')
      }
    }
    client.on('error', gone).on('close', gone)
  })
  return {
    url: proxy.url,
    arm() {
      armed = true
    },
    outcome,
    close: () => proxy.close(),
  }
}
