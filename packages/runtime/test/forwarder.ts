import { type AddressInfo, type Server, type Socket, connect, createServer } from 'node:net'

/** A port nothing listens on (yet): connections to it are refused. */
export async function freePort(): Promise<number> {
  const probe = createServer()
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
  const { port } = probe.address() as AddressInfo
  await new Promise<void>((resolve) => probe.close(() => resolve()))
  return port
}

/**
 * Forwards `port` to PostgreSQL: what "the database came up" looks like to a pool connected to `port`.
 * Closing it destroys every forwarded connection and refuses new ones: the database "went away".
 */
const forwarded = new WeakMap<Server, Set<Socket>>()

export async function forward(port: number, to: URL): Promise<Server> {
  const sockets = new Set<Socket>()
  const server = createServer((client) => {
    const upstream = connect(Number(to.port || 5432), to.hostname)
    for (const s of [client, upstream]) {
      sockets.add(s)
      s.on('error', () => {})
      s.on('close', () => sockets.delete(s))
    }
    client.pipe(upstream).pipe(client)
  })
  server.on('close', () => {
    for (const s of sockets) s.destroy()
  })
  forwarded.set(server, sockets)
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
  return server
}

/** Closes a forwarder: its connections are destroyed at once, new ones refused; resolves when it stopped listening. */
export async function cut(server: Server): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()))
  for (const s of forwarded.get(server) ?? []) s.destroy()
  await closed
}
