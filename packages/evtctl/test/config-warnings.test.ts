import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { closest, unknownEnvWarnings } from '../src/config-warnings.ts'

// Mutation audit 2026-12-02 (random sample: mutrand): the edit distance behind "did you mean" had no test of its own.
describe('did you mean: the name a few edits away', () => {
  test('a typo a few edits away is suggested; a name that only ends like a candidate is not', () => {
    const keys = ['databaseUrl', 'natsUrl', 'natsUser', 'natsPasswordFile', 'tenant']
    assert.equal(closest('databseUrl', keys), 'databaseUrl')
    assert.equal(closest('natsurl', keys), 'natsUrl')
    assert.equal(closest('tenatn', keys), 'tenant')
    // "url" is the end of two keys but 4 and 8 edits from them: no guess beats a wrong one.
    assert.equal(closest('url', keys), undefined)
    assert.equal(closest('File', keys), undefined)
    assert.equal(closest('password', keys), undefined)
  })

  test('an unknown EVENTPLANE_* variable gets the nearest known one, or no guess', () => {
    assert.deepEqual(
      unknownEnvWarnings({ EVENTPLANE_TENANTS: 'acme', EVENTPLANE_URL: 'x', EVENTPLANE_TENANT: 'acme' }),
      [
        'EVENTPLANE_TENANTS is not a setting eventplane knows, so it is ignored (did you mean EVENTPLANE_TENANT?)',
        'EVENTPLANE_URL is not a setting eventplane knows, so it is ignored',
      ],
    )
  })
})
