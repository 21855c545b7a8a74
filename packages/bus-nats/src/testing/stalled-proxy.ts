import { onProtocolMessages } from './nats-frames.ts'
import { type NatsProxy, startNatsProxy } from './nats-proxy.ts'

/** A proxy that forwards until {@link StalledProxy.stall}, then lets nothing through (see {@link startStalledProxy}). */
export interface StalledProxy extends NatsProxy {
  /**
   * From now on no byte passes either way, on the connections open and on any that come: the server (or the
   * path to it) stopped answering, and nothing closes. A client notices only by its own timeouts.
   */
  stall(): void
  /** Resolves once the proxy stalled (stall(), or the request of `stallAtRequest`). */
  readonly stalled: Promise<void>
}

export interface StalledProxyOptions {
  /**
   * Stall by itself at a client's first request (a publish with a reply subject) on a subject that starts with
   * this (`$JS.API.`: a service's first JetStream request), that request not passed on: the server stopped
   * answering just as the client began to wait for it, whatever the timing.
   */
  stallAtRequest?: string
}

/**
 * A proxy in front of the nats-server on `serverPort` that can stall: what a stop does when the server it must
 * wait for (a drain's PING, a flush) no longer answers, nor lets itself be dialed again.
 */
export async function startStalledProxy(serverPort: number, options: StalledProxyOptions = {}): Promise<StalledProxy> {
  let stalled = false
  let markStalled!: () => void
  const stalledOnce = new Promise<void>((resolve) => (markStalled = resolve))
  const stall = (): void => {
    stalled = true
    markStalled()
  }
  const { stallAtRequest } = options
  const proxy = await startNatsProxy(serverPort, (client, server) => {
    // Before the forwarding below: a chunk with the request in it is not passed on.
    if (stallAtRequest !== undefined)
      onProtocolMessages(client, (line) => {
        const args = line.split(' ')
        const op = args[0]!.toUpperCase()
        const withReply = args.length === (op === 'HPUB' ? 5 : 4)
        if ((op === 'PUB' || op === 'HPUB') && withReply && args[1]!.startsWith(stallAtRequest)) stall()
      })
    client.on('data', (d: Buffer) => {
      if (!stalled) server.write(d)
    })
    server.on('data', (d: Buffer) => {
      if (!stalled) client.write(d)
    })
  })
  return { ...proxy, stall, stalled: stalledOnce }
}
