import { type MsgHdrs, MsgHdrsImpl } from '@nats-io/transport-node'

const HEADER_LINE = 'NATS/1.0'
/** nats.js's own decoder of header blocks: UTF-8, not fatal. */
const utf8 = new TextDecoder()
const COLON = 58
/** A header name is printable ASCII without the colon (RFC 822 3.1.2), as nats.js checks it. */
const NAME_FIRST = 33
const NAME_LAST = 126

/**
 * A received header block (`NATS/1.0\r\nName: value\r\n…`) as the map nats.js `MsgHdrsImpl.decode` makes of
 * it, without its per-line costs that change nothing in a block of plain names: each name's canonical form
 * built by spreading its characters into `String.fromCharCode` and thrown away (exact match keeps the name
 * as written), and a list and filter of every key so far per line. Names are kept as written, values
 * trimmed, repeated names keep every value in order. A block nats.js reads differently (a status line:
 * code and description) or would refuse (a name with a character outside 33–126) goes to nats.js's own
 * decode, so the result, or the error, is always nats.js's.
 */
export function decodeHeaderBlock(bytes: Uint8Array): MsgHdrsImpl {
  const lines = utf8.decode(bytes).split('\r\n')
  if (lines[0] !== HEADER_LINE) return MsgHdrsImpl.decode(bytes)
  const h = new MsgHdrsImpl()
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!
    const colon = line.indexOf(':')
    if (colon < 0) continue
    const name = line.slice(0, colon)
    if (!plainName(name)) return MsgHdrsImpl.decode(bytes)
    const value = line.slice(colon + 1).trim()
    const values = h.headers.get(name)
    if (values === undefined) h.headers.set(name, [value])
    else values.push(value)
  }
  return h
}

/** True when every character of `name` is one nats.js accepts in a header name (an empty name too, as it does). */
function plainName(name: string): boolean {
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i)
    if (c < NAME_FIRST || c > NAME_LAST || c === COLON) return false
  }
  return true
}

/** nats.js's received message (MsgImpl): the parsed protocol line (`hdr`: the header block's length) and the bytes. */
interface ReceivedMsg {
  _msg?: { hdr?: unknown }
  _rdata?: unknown
  _headers?: unknown
}

/**
 * The headers of a received message, decoded once by {@link decodeHeaderBlock} from nats.js's raw bytes and
 * left on the message where its own `headers` getter finds them (it decodes only while none are there), so
 * a later `msg.headers` reads the same object. A message of another shape (a JetStream message wraps the
 * received one as `msg`) or one whose headers were already read gets nats.js's `headers`.
 */
export function receivedHeaders(msg: { headers?: MsgHdrs }): MsgHdrs | undefined {
  const m = ((msg as { msg?: unknown }).msg ?? msg) as ReceivedMsg
  const hdr = m._msg?.hdr
  const data = m._rdata
  if (m._headers !== undefined || typeof hdr !== 'number' || !(data instanceof Uint8Array)) return msg.headers
  if (hdr < 0) return undefined
  const headers = decodeHeaderBlock(data.subarray(0, hdr))
  m._headers = headers
  return headers
}
