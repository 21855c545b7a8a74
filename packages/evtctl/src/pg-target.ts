import { connect } from 'node:net'

/** Where a PostgreSQL URL points, for messages: never the password. */
export interface PgTarget {
  host: string
  port: number
  database: string
  role: string
}

/** The parts of `url` an operator needs to see which server, database and role a failure is about. */
export function pgTarget(url: string): PgTarget {
  const u = new URL(url)
  const host = u.searchParams.get('host') ?? decodeURIComponent(u.hostname || 'localhost')
  const role = decodeURIComponent(u.username) || 'postgres'
  return {
    host: host.replace(/^\[|\]$/g, ''),
    port: Number(u.port || 5432),
    database: decodeURIComponent(u.pathname.slice(1)) || role,
    role,
  }
}

/** `database "d" as role "r" at host:port`. */
export function describeTarget(t: PgTarget): string {
  return `database "${t.database}" as role "${t.role}" at ${t.host}:${t.port}`
}

/** What a PostgreSQL server answers first to an SSLRequest, and what anything else does. */
export type ProtocolCheck =
  | { speaks: 'postgres' }
  | { speaks: 'other'; answer: string }
  | { speaks: 'nothing'; why: 'closed' | 'timeout' | 'error'; code?: string }

const SSL_REQUEST = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f])

/**
 * Sends an SSLRequest, the first message of every PostgreSQL connection, and
 * reads one answer: a PostgreSQL server (or pooler) says `S` or `N` (or `E`
 * on very old servers); an HTTP or other server says something else or
 * closes. Used only when a connection is slow, so a wrong service on the port
 * is named within seconds instead of postgres.js retrying it forever.
 */
export function checkProtocol(host: string, port: number, timeoutMs: number): Promise<ProtocolCheck> {
  return new Promise((resolve) => {
    const socket = connect({ host, port })
    const done = (result: ProtocolCheck): void => {
      clearTimeout(timer)
      socket.destroy()
      resolve(result)
    }
    const timer = setTimeout(() => done({ speaks: 'nothing', why: 'timeout' }), timeoutMs)
    socket.once('connect', () => socket.write(SSL_REQUEST))
    socket.once('data', (data: Buffer) => {
      const first = String.fromCharCode(data[0]!)
      if (first === 'S' || first === 'N' || first === 'E') done({ speaks: 'postgres' })
      else done({ speaks: 'other', answer: printable(data) })
    })
    socket.once('error', (e: NodeJS.ErrnoException) => done({ speaks: 'nothing', why: 'error', code: e.code ?? '' }))
    socket.once('close', () => done({ speaks: 'nothing', why: 'closed' }))
  })
}

/** The first line of an answer, printable ASCII only and short: it goes into a one-line error. */
function printable(data: Buffer): string {
  const line = data.toString('latin1').split(/\r?\n/)[0] ?? ''
  const text = line.replace(/[^\x20-\x7e]/g, '?').slice(0, 60)
  return text === '' ? `${data.length} bytes` : text
}
