import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { EventFactory, type EventEnvelope, isEventplaneError } from '@eventplane/core'
import { isEvtctlError } from '../src/cli-error.ts'
import { recheckedLines } from '../src/import-plan.ts'

const line = (e: EventEnvelope): string => JSON.stringify(e)
const acme = EventFactory.forTenant('acme', { causedBy: 'user:a' })
const globex = EventFactory.forTenant('globex', { causedBy: 'user:g' })
const intent = (f: EventFactory, id: string) => line(f.intent({ category: 'deployment', id }, 'scaled', {}))

/** What the writing pass lets through before it stops: the lines yielded, and the error it stopped with. */
async function writingPass(lines: string[], allowFacts = false): Promise<{ yielded: number; error: unknown }> {
  let yielded = 0
  try {
    for await (const _ of recheckedLines(lines, { tenant: 'acme', allowFacts })) yielded++
  } catch (error) {
    return { yielded, error }
  }
  return { yielded, error: undefined }
}

describe("import's writing pass checks every line again", () => {
  test('a line the planning pass never saw (the file changed between the passes) stops the import before it is written', async () => {
    const otherTenant = await writingPass([intent(acme, 'a'), intent(globex, 'b'), intent(acme, 'c')])
    assert.equal(otherTenant.yielded, 1, 'only the line before it')
    assert.ok(isEventplaneError(otherTenant.error, 'core.tenant_mismatch'), String(otherTenant.error))
    assert.match((otherTenant.error as Error).message, /^line 2 is an event of tenant globex, not of --tenant acme$/)

    const fact = line(acme.fact({ category: 'deployment', id: 'a' }, 'scaled', {}))
    const unasked = await writingPass([intent(acme, 'a'), fact])
    assert.equal(unasked.yielded, 1)
    assert.ok(isEvtctlError(unasked.error, 'cli.bad_usage'), String(unasked.error))
    assert.match((unasked.error as Error).message, /^line 2 is a fact \(scaled\)/)

    assert.deepEqual(await writingPass([intent(acme, 'a'), '', fact], true), { yielded: 3, error: undefined })
  })
})
