import { type NatsProxy, startNatsProxy } from './nats-proxy.ts'

/** A proxy that forwards until {@link StalledProxy.stall}, then lets nothing through (see {@link startStalledProxy}). */
export interface StalledProxy extends NatsProxy {
  /**
   * From now on no byte passes either way, on the connections open and on any that come: the server (or the
   * path to it) stopped answering, and nothing closes. A client notices only by its own timeouts.
   */
  stall(): void
}

/**
 * A proxy in front of the nats-server on `serverPort` that can stall: what a stop does when the server it must
 * wait for (a drain's PING, a flush) no longer answers, nor lets itself be dialed again.
 */
export async function startStalledProxy(serverPort: number): Promise<StalledProxy> {
  let stalled = false
  const proxy = await startNatsProxy(serverPort, (client, server) => {
    client.on('data', (d: Buffer) => {
      if (!stalled) server.write(d)
    })
    server.on('data', (d: Buffer) => {
      if (!stalled) client.write(d)
    })
  })
  return {
    ...proxy,
    stall() {
      stalled = true
    },
  }
}
