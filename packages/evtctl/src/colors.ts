/** What colour depends on of a writer (io.ts `Writer`): whether a terminal is attached. */
type Terminal = { isTTY?: boolean }

/**
 * Whether to colour what goes to `out`: only a terminal, never with
 * `NO_COLOR` set (https://no-color.org) or `TERM=dumb`, so piped output and
 * files never carry escape codes.
 */
export function colorEnabled(out: Terminal, env: NodeJS.ProcessEnv): boolean {
  return out.isTTY === true && (env.NO_COLOR ?? '') === '' && env.TERM !== 'dumb'
}

/** SGR styles that are identity functions when colour is off. */
export interface Styles {
  bold(text: string): string
  dim(text: string): string
  warn(text: string): string
}

const sgr =
  (on: boolean, open: number, close: number) =>
  (text: string): string =>
    on ? `\x1b[${open}m${text}\x1b[${close}m` : text

/** The styles for `out`. */
export function stylesFor(out: Terminal, env: NodeJS.ProcessEnv): Styles {
  const on = colorEnabled(out, env)
  return { bold: sgr(on, 1, 22), dim: sgr(on, 2, 22), warn: sgr(on, 33, 39) }
}
