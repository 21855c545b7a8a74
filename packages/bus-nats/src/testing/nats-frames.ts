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
