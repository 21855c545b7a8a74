import type { Socket } from 'node:net'
import { LOG_ROOT } from '../subjects.ts'

const CRLF = Buffer.from('\r\n')

/**
 * One whole NATS protocol message at the front of `buf` (what a loopback
 * proxy between a client and nats-server sees): its op line and its total
 * length, or undefined while incomplete. MSG, HMSG, PUB and HPUB carry a
 * payload whose size is the op line's last argument; the rest are one line.
 */
export function nextProtocolMessage(buf: Buffer): { line: string; length: number } | undefined {
  const end = buf.indexOf(CRLF)
  if (end < 0) return undefined
  const line = buf.subarray(0, end).toString('latin1')
  const args = line.split(' ')
  const op = args[0]!.toUpperCase()
  const payload = op === 'MSG' || op === 'HMSG' || op === 'PUB' || op === 'HPUB' ? Number(args.at(-1)) + 2 : 0
  const length = end + 2 + payload
  return buf.length < length ? undefined : { line, length }
}

/**
 * Calls `onMessage` with each whole NATS protocol message `socket` receives, in order: its op line and its bytes
 * (op line, payload and CRLFs, as they came). An incomplete message at the end of a chunk waits for the rest.
 * Stops within a chunk once `socket` is destroyed (a proxy that cuts the connection reads no further).
 */
export function onProtocolMessages(socket: Socket, onMessage: (line: string, bytes: Buffer) => void): void {
  let buf = Buffer.alloc(0)
  socket.on('data', (chunk: Buffer) => {
    buf = Buffer.concat([buf, chunk])
    for (let m = nextProtocolMessage(buf); m !== undefined && !socket.destroyed; m = nextProtocolMessage(buf)) {
      const bytes = buf.subarray(0, m.length)
      buf = buf.subarray(m.length)
      onMessage(m.line, bytes)
    }
  })
}

/**
 * The reply subject of a client's publish to a log subject (`PUB <subject> <reply> <size>`, `HPUB <subject> <reply>
 * <hdr> <total>`): where the stream's ack for it goes. Undefined for any other op line, or a publish with no reply.
 */
export function logPublishReply(line: string): string | undefined {
  const args = line.split(' ')
  const [op, subject, reply] = args
  const pub = op!.toUpperCase()
  const withReply = args.length === (pub === 'HPUB' ? 5 : 4)
  return (pub === 'PUB' || pub === 'HPUB') && subject!.startsWith(`${LOG_ROOT}.`) && withReply ? reply : undefined
}
