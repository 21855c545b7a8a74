import type { Socket } from 'node:net'
import { type NatsProxy, startNatsProxy } from './nats-proxy.ts'

/** A proxy that holds a client's last reconnect (see {@link holdRefusedReconnect}). */
export interface RefusedReconnectProxy extends NatsProxy {
  /**
   * Resolves once the client dials again after a reconnect the server refused (`Authorization Violation`):
   * the dial after which nats.js closes for good when it is refused too. Its bytes to the server are held
   * until `release()`; the server's (its INFO) pass.
   */
  held: Promise<{ release(): void }>
}

/**
 * A proxy in front of the nats-server on `serverPort` for a client whose user is revoked: the server ends its
 * connection and refuses the reconnects; nats.js gives up (closes) at its second auth error in a row. The proxy
 * holds the reconnect that follows the first refused one, so a test can start something on the connection while
 * it dials (a drain, whose PING waits for that dial) and only then let it be refused.
 */
export async function holdRefusedReconnect(serverPort: number): Promise<RefusedReconnectProxy> {
  let refused = false
  let hold!: (held: { release(): void }) => void
  const held = new Promise<{ release(): void }>((resolve) => (hold = resolve))
  const proxy = await startNatsProxy(serverPort, (client: Socket, server: Socket) => {
    server.pipe(client)
    if (!refused) {
      server.on('data', (d: Buffer) => {
        if (d.includes("-ERR 'Authorization Violation'")) refused = true
      })
      client.pipe(server)
      return
    }
    client.pause()
    hold({
      release() {
        client.pipe(server)
        client.resume()
      },
    })
  })
  return { ...proxy, held }
}
