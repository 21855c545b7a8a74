import assert from 'node:assert/strict'
import { type SpawnSyncReturns, spawnSync } from 'node:child_process'
import { describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { PG_WRITE_AFTER_CLOSE_WARNING, isPgWriteAfterClose } from '../src/pg-write-after-close.ts'

const GUARD = fileURLToPath(new URL('../src/pg-write-after-close.ts', import.meta.url))

const MESSAGE = "Cannot read properties of null (reading 'write')"
const DRIVER = 'file:///srv/app/node_modules/.pnpm/postgres@3.4.9/node_modules/postgres/src/connection.js'

/** A TypeError of `message` whose stack has these frames, top first. */
function typeError(frames: string[], message = MESSAGE, Kind: ErrorConstructor = TypeError): Error {
  const e = new Kind(message)
  e.stack = [`${Kind.name}: ${message}`, ...frames.map((f) => `    at ${f}`)].join('\n')
  return e
}

describe('isPgWriteAfterClose recognises the postgres.js ROLLBACK write after close and nothing else', () => {
  test("the driver's nextWrite on top, from a setImmediate or called directly, ESM or CommonJS build", () => {
    for (const frames of [
      [`Immediate.nextWrite (${DRIVER}:255:22)`, 'process.processImmediate (node:internal/timers:483:21)'],
      [`nextWrite (${DRIVER}:255:22)`, `write (${DRIVER}:249:14)`],
      ['nextWrite (/srv/app/node_modules/postgres/cjs/src/connection.js:255:22)'],
    ])
      assert.equal(isPgWriteAfterClose(typeError(frames)), true, frames[0])
  })

  test('the same message anywhere else, another message, or another error class is not it', () => {
    const cases: [string, Error][] = [
      ['a nextWrite of another module', typeError(['nextWrite (file:///srv/app/src/connection.js:3:1)'])],
      [
        'another function of the driver on top',
        typeError([`Socket.write (${DRIVER}:300:1)`, `nextWrite (${DRIVER}:255:22)`]),
      ],
      [
        'the application on top, nextWrite below',
        typeError([`handler (file:///srv/app/src/h.js:1:1)`, `nextWrite (${DRIVER}:255:22)`]),
      ],
      [
        'another message',
        typeError([`nextWrite (${DRIVER}:255:22)`], "Cannot read properties of null (reading 'end')"),
      ],
      ['not a TypeError', typeError([`nextWrite (${DRIVER}:255:22)`], MESSAGE, Error)],
      [
        'a real TypeError of ours',
        (() => {
          try {
            ;(null as unknown as { write(): void }).write()
          } catch (e) {
            return e as Error
          }
          throw new Error('unreachable')
        })(),
      ],
    ]
    for (const [what, e] of cases) assert.equal(isPgWriteAfterClose(e), false, what)
    assert.equal(isPgWriteAfterClose(MESSAGE), false, 'a thrown string')
  })
})

/** Runs `body` in a node child with the guard module imported as `guard`; what it printed and how it ended. */
function inChild(body: string): SpawnSyncReturns<string> {
  const script = `import * as guard from ${JSON.stringify(GUARD)}\n${body}`
  return spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    encoding: 'utf8',
    timeout: 30_000,
  })
}

describe('guardPgWriteAfterClose, the uncaughtException guard an embedding application installs', () => {
  const driverError = `Object.assign(new TypeError(${JSON.stringify(MESSAGE)}), { stack: ${JSON.stringify(
    `TypeError: ${MESSAGE}\n    at Immediate.nextWrite (${DRIVER}:255:22)`,
  )} })`

  test('the defect thrown from a setImmediate: one warning line, the process goes on and ends normally', () => {
    const r = inChild(`guard.guardPgWriteAfterClose()
setImmediate(() => { throw ${driverError} })
setTimeout(() => console.log('still running'), 50)`)
    assert.equal(r.status, 0, r.stderr)
    assert.equal(r.stdout, 'still running\n')
    assert.equal(r.stderr, `warning: ${PG_WRITE_AFTER_CLOSE_WARNING}\n`)
  })

  test('any other uncaught exception ends the process as Node would: its stack on stderr, exit 1', () => {
    const r = inChild(`guard.guardPgWriteAfterClose()
setImmediate(() => { throw new TypeError(${JSON.stringify(MESSAGE)}) })
setTimeout(() => console.log('still running'), 500)`)
    assert.equal(r.status, 1, r.stderr)
    assert.equal(r.stdout, '')
    assert.match(r.stderr, /^TypeError: Cannot read properties of null \(reading 'write'\)\n {4}at /)
  })

  test('the function it returns removes it: the defect is then uncaught again (exit 1)', () => {
    const r = inChild(`const remove = guard.guardPgWriteAfterClose({ onIgnored: () => console.log('ignored') })
remove()
setImmediate(() => { throw ${driverError} })
setTimeout(() => console.log('still running'), 500)`)
    assert.equal(r.status, 1, r.stderr)
    assert.equal(r.stdout, '')
  })
})
