import { type AddressInfo, type Socket, connect, createServer } from 'node:net'

/** A TCP proxy in front of PostgreSQL that ends its first session while postgres.js fetches array types. */
export interface TypesQueryProxy {
  /** The port it listens on (127.0.0.1). */
  port: number
  /** Connections it carried so far. */
  connections(): number
  /** Settles once the first session's backend was terminated (with its pid), or with the termination's failure. */
  terminated: Promise<number>
  close(): Promise<void>
}

const TYPES_QUERY = Buffer.from('typarray')
const DATA_ROW = 0x44
const ERROR_RESPONSE = 0x45
const BACKEND_KEY_DATA = 0x4b

/**
 * Every new postgres.js connection first runs its array-types query (`fetch_types`; the query names `typarray`).
 * The proxy reads the backend pid of its first session from the server's BackendKeyData and calls `terminate(pid)`
 * at one point of that query: with `rowsFirst` 0 it holds the client message that carries the query (it never
 * reaches the server); with `rowsFirst` n it passes the query and n rows of its answer, then drops what the server
 * sends but an ErrorResponse. The real server then sends its 57P01 and closes while the driver waits for the rest of
 * the types, with no timing luck. Later connections pass through.
 */
export async function typesQueryProxy(
  target: { host: string; port: number },
  terminate: (pid: number) => Promise<void>,
  rowsFirst = 0,
): Promise<TypesQueryProxy> {
  const sockets = new Set<Socket>()
  let connections = 0
  let onTerminated!: { resolve: (pid: number) => void; reject: (e: unknown) => void }
  const terminated = new Promise<number>((resolve, reject) => (onTerminated = { resolve, reject }))
  terminated.catch(() => {})

  const server = createServer((client) => {
    const first = ++connections === 1
    const upstream = connect(target.port, target.host)
    for (const s of [client, upstream]) {
      sockets.add(s)
      s.on('error', () => {})
      s.on('close', () => sockets.delete(s))
    }
    client.on('close', () => upstream.destroy())
    upstream.on('close', () => client.end())
    if (!first) {
      client.pipe(upstream)
      upstream.pipe(client)
      return
    }
    let pid: number | undefined
    let typesSent = false
    let rows = 0
    let ending = false
    const end = (): void => {
      ending = true
      terminate(pid!).then(() => onTerminated.resolve(pid!), onTerminated.reject)
    }
    upstream.on(
      'data',
      messages(true, (m) => {
        if (m[0] === BACKEND_KEY_DATA) pid = m.readUInt32BE(5)
        if (ending) {
          if (m[0] === ERROR_RESPONSE) client.write(m)
          return
        }
        client.write(m)
        if (typesSent && m[0] === DATA_ROW && ++rows === rowsFirst) end()
      }),
    )
    client.on(
      'data',
      messages(false, (m) => {
        if (ending) return
        if (pid !== undefined && !typesSent && m.includes(TYPES_QUERY)) {
          typesSent = true
          if (rowsFirst === 0) return end()
        }
        upstream.write(m)
      }),
    )
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    port: (server.address() as AddressInfo).port,
    connections: () => connections,
    terminated,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      }),
  }
}

/** Splits a protocol stream into whole messages; the client's first (startup) message has no type byte. */
function messages(typed: boolean, each: (message: Buffer) => void): (chunk: Buffer) => void {
  let pending = Buffer.alloc(0)
  let untyped = !typed
  return (chunk) => {
    pending = Buffer.concat([pending, chunk])
    for (;;) {
      const head = untyped ? 0 : 1
      if (pending.length < head + 4) return
      const end = head + pending.readUInt32BE(head)
      if (pending.length < end) return
      each(pending.subarray(0, end))
      pending = pending.subarray(end)
      untyped = false
    }
  }
}
