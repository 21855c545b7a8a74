import { EventplaneError } from '@eventplane/core'
import { stylesFor } from './colors.ts'
import { alignRows } from './table.ts'

/** A writable evtctl prints to; process.stdout/stderr or a test buffer. */
export interface Writer {
  write(chunk: string): unknown
  /** True when a terminal is attached (progress bars, colours). */
  isTTY?: boolean
  columns?: number
}

/**
 * Everything evtctl touches outside its own code, injected so the CLI can run
 * in-process in tests: output writers, the environment, stdin for `--data -`,
 * and a signal that stops long-running commands (SIGINT/SIGTERM in main.ts).
 */
export interface CliIo {
  stdout: Writer
  stderr: Writer
  env: NodeJS.ProcessEnv
  stdin?: AsyncIterable<Buffer | string>
  signal?: AbortSignal
  cwd?: string
}

/**
 * Characters JSON.stringify leaves as they are that a terminal may act on or that change what an operator sees:
 * DEL and the C1 controls (U+0080–U+009F; U+009B is a one-character CSI, as ESC [ is), the bidirectional marks,
 * embeddings, overrides and isolates (U+200E, U+200F, U+202A–U+202E, U+2066–U+2069: they reorder the text shown
 * around them) and the line and paragraph separators. JSON.stringify escapes U+0000–U+001F itself.
 */
const TERMINAL_UNSAFE = /[\u007f-\u009f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g

/**
 * `text` with each {@link TERMINAL_UNSAFE} character written as its `\uXXXX` escape: in JSON text (where they can
 * only occur inside strings) the same JSON value; in any text, nothing a terminal acts on or shows reordered.
 * What evtctl prints of data others wrote (event data, log fields such as a refused subject) goes through it.
 */
export function terminalSafe(text: string): string {
  return text.replace(TERMINAL_UNSAFE, escapeChar)
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: the control characters are what it finds
const C0_CONTROLS = /[\u0000-\u001f]/g

/** Plain text (not JSON) made {@link terminalSafe}, its C0 controls (ESC, BEL, newline…) escaped as well. */
export function terminalSafeText(text: string): string {
  return terminalSafe(text).replace(C0_CONTROLS, escapeChar)
}

function escapeChar(c: string): string {
  return `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`
}

/**
 * JSON with bigints as decimal strings (positions must never pass through a float), {@link terminalSafe}: event
 * data a tenant wrote cannot drive or disguise an operator's terminal (`evtctl read`, `tail`, `subscribe`, `state`,
 * and every `--json` line).
 */
export function toJson(value: unknown): string {
  // undefined (no JSON form) stays as JSON.stringify gives it.
  const text: string | undefined = JSON.stringify(value, (_key, v: unknown) =>
    typeof v === 'bigint' ? v.toString() : v,
  )
  return (text === undefined ? text : terminalSafe(text)) as string
}

/** How `Output.rows` shows a list: the machine record and the human columns of one value. */
export interface RowsView<T> {
  record(value: T): unknown
  cells(value: T): string[]
  header?: string[]
}

/** Line-oriented output for one command: human text or one JSON document per line. */
export class Output {
  constructor(
    readonly io: CliIo,
    readonly json: boolean,
  ) {}

  /** A human line; ignored in `--json` mode. */
  line(text = ''): void {
    if (!this.json) this.io.stdout.write(`${text}\n`)
  }

  /** A machine record; ignored in human mode. */
  record(value: unknown): void {
    if (this.json) this.io.stdout.write(`${toJson(value)}\n`)
  }

  /**
   * Many results: one JSON line per value (`view.record`), or one human line
   * per value with the columns of `view.cells` aligned, under `view.header`.
   */
  rows<T>(values: readonly T[], view: RowsView<T>): void {
    if (this.json) {
      for (const v of values) this.record(view.record(v))
      return
    }
    if (values.length === 0) return
    const lines = alignRows([...(view.header ? [view.header] : []), ...values.map(view.cells)])
    if (view.header) lines[0] = stylesFor(this.io.stdout, this.io.env).bold(lines[0]!)
    for (const l of lines) this.line(l)
  }

  /** Either form of one result: `human()` is only called in human mode. */
  emit(value: unknown, human: () => string | string[]): void {
    if (this.json) {
      this.record(value)
      return
    }
    const text = human()
    for (const l of Array.isArray(text) ? text : [text]) this.line(l)
  }
}

/** Reads all of stdin (for `--data -`), bounded so a runaway pipe cannot exhaust memory. */
export async function readAllStdin(io: CliIo, maxBytes: number): Promise<string> {
  if (!io.stdin) throw new Error('stdin is not available')
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of io.stdin) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk
    size += buf.byteLength
    if (size > maxBytes)
      throw new EventplaneError(
        'core.payload_too_large',
        `stdin holds more than ${maxBytes} bytes, the most --data - reads (event data itself is limited to 64 KiB)`,
        { details: { limit: maxBytes } },
      )
    chunks.push(buf)
  }
  return Buffer.concat(chunks).toString('utf8')
}
