import { readFileSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'

/**
 * Every file under `dir` (an auth dir: its lock file left out) with its content, by path relative to `dir`: what
 * a test compares before and after a command that must write nothing.
 */
export function dirSnapshot(dir: string): Map<string, string> {
  const files = readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => !f.startsWith('.lock') && statSync(join(dir, f)).isFile())
    .sort()
  return new Map(files.map((f) => [f, readFileSync(join(dir, f), 'utf8')]))
}
