import { type AddressInfo, type Server, type Socket, createServer, connect } from 'node:net'

/** A loopback TCP proxy in front of a nats-server (what a test's gate or cut is built on). */
export interface NatsProxy {
  /** `nats://127.0.0.1:<port>`: give it to the client instead of the server's URL. */
  url: string
  /** Drops every connection and stops listening. */
  close(): Promise<void>
}

/**
 * Listens on a free loopback port and, for each client that connects, opens a connection of its own to the
 * nats-server on `serverPort` and hands both sockets to `wire`, which forwards (or holds, or drops) the bytes of
 * each direction: the proxy decides nothing about them. It owns the connections' ends: a client that goes (closes,
 * errs, a killed process's reset) leaves what it sent to reach the server (the server side is ended, not
 * destroyed); a server side that goes takes its client with it.
 */
export async function startNatsProxy(
  serverPort: number,
  wire: (client: Socket, server: Socket) => void,
): Promise<NatsProxy> {
  const sockets = new Set<Socket>()
  const proxy: Server = createServer((client) => {
    const server = connect({ host: '127.0.0.1', port: serverPort })
    sockets.add(client).add(server)
    const drop = (): void => {
      client.destroy()
      server.destroy()
      sockets.delete(client)
      sockets.delete(server)
    }
    client.on('error', () => server.end()).on('close', () => server.end())
    server.on('error', drop).on('close', drop)
    wire(client, server)
  })
  await new Promise<void>((ready) => proxy.listen(0, '127.0.0.1', ready))
  const { port } = proxy.address() as AddressInfo
  return {
    url: `nats://127.0.0.1:${port}`,
    async close() {
      for (const s of sockets) s.destroy()
      await new Promise<void>((done) => proxy.close(() => done()))
    },
  }
}
