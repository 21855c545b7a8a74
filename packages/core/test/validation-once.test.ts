import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import {
  EventFactory,
  draftIntent,
  expectedVersionFromText,
  isEventplaneError,
  ensureStreamRef,
  envelopeStream,
  isExpectedVersion,
  isValidEnvelope,
  isValidStreamRef,
  parseStream,
  stampIntent,
  validateEnvelope,
  validateIntentDraft,
} from '@eventplane/core'
import { nameParseCount } from '@eventplane/core/testing'

const s = { category: 'deployment', id: 'web' }

describe('validation once per process boundary', () => {
  test('only the very object validateEnvelope accepted counts as validated: a copy or a parse does not', () => {
    const e = EventFactory.forTenant('acme', { causedBy: 'user:alice' }).intent(s, 'create', { n: 1 })
    assert.equal(isValidEnvelope(e), true, 'the factory validated it')
    assert.equal(isValidEnvelope({ ...e }), false, 'a spread copy')
    assert.equal(isValidEnvelope({ ...e, tenant_id: 'a.b' }), false, 'a forged copy')
    const parsed = JSON.parse(JSON.stringify(e)) as unknown
    assert.equal(isValidEnvelope(parsed), false, 'a parsed body')
    assert.equal(isValidEnvelope(validateEnvelope(parsed)), true, 'until it is validated')
    assert.throws(
      () => validateEnvelope({ ...e, tenant_id: 'a.b' }),
      (x) => isEventplaneError(x, 'core.invalid_name'),
    )
  })

  test('a draft intent has no caused_by; the stamp adds the principal and validates, replacing any claim', () => {
    const draft = draftIntent(
      { tenant: 'acme', ...s },
      'create',
      { image: 'nginx' },
      { now: () => new Date('2026-01-02T00:00:00Z') },
    )
    assert.equal('caused_by' in draft, false)
    assert.equal(draft.kind, 'intent')
    assert.equal(draft.correlation_id, draft.event_id)
    assert.equal(isValidEnvelope(draft), false, 'a draft is not an envelope the store may trust')
    const stamped = stampIntent({ ...draft, caused_by: 'controller:pretender' }, 'nats:acme/alice')
    assert.equal(stamped.caused_by, 'nats:acme/alice')
    assert.equal(isValidEnvelope(stamped), true)
    assert.throws(
      () => stampIntent({ ...draft, tenant_id: 'a*' }, 'nats:acme'),
      (x) => isEventplaneError(x, 'core.invalid_name'),
    )
    assert.throws(
      () => draftIntent({ tenant: 'acme', category: 'a.b', id: 'x' }, 'create', {}),
      (x) => isEventplaneError(x, 'core.invalid_name'),
    )
    assert.throws(
      () => validateIntentDraft({ ...draft, caused_by: 'x' }),
      (x) => isEventplaneError(x, 'core.invalid_envelope'),
    )
    const parent = EventFactory.forTenant('globex', { causedBy: 'user:g' }).intent(s, 'create', {})
    assert.throws(
      () => draftIntent({ tenant: 'acme', ...s }, 'create', {}, { parent }),
      (x) => isEventplaneError(x, 'core.tenant_mismatch'),
    )
  })

  test('a stream reference is parsed once: only the very object core parsed is trusted, a copy is parsed again', () => {
    const before = nameParseCount()
    const ref = parseStream('acme/deployment/web')
    assert.equal(nameParseCount() - before, 3)
    assert.equal(isValidStreamRef(ref), true)
    assert.equal(Object.isFrozen(ref), true, 'frozen: its names cannot change after the parse')
    assert.equal(ensureStreamRef(ref), ref)
    assert.equal(nameParseCount() - before, 3, 'trusted: not parsed again')
    const copy = { ...ref }
    assert.equal(isValidStreamRef(copy), false, 'a spread copy')
    assert.equal(isValidStreamRef(ensureStreamRef(copy)), true)
    assert.equal(nameParseCount() - before, 6, 'a copy is parsed')
    assert.throws(
      () => ensureStreamRef({ ...ref, tenant: 'a.b' }),
      (x) => isEventplaneError(x, 'core.invalid_name'),
    )
    const e = EventFactory.forTenant('acme', { causedBy: 'user:alice' }).intent(ref, 'create', {})
    const counted = nameParseCount()
    assert.equal(isValidStreamRef(envelopeStream(e)), true)
    assert.equal(isValidStreamRef(ensureStreamRef({ ...ref }, e)), true, 'the stream of a validated envelope')
    assert.equal(nameParseCount(), counted, 'a validated envelope carries its parsed names')
    envelopeStream({ ...e })
    assert.equal(nameParseCount() - counted, 3, 'a copy of an envelope is parsed')
  })

  test('one expected-version rule: exact non-negative integers, no_stream, any', () => {
    for (const ok of [0, 1, 2 ** 53 - 1, 'no_stream', 'any']) assert.equal(isExpectedVersion(ok), true, String(ok))
    for (const bad of [-1, 1.5, Number.NaN, 2 ** 53, '1', 'none', null, undefined, {}])
      assert.equal(isExpectedVersion(bad), false, String(bad))
    assert.equal(expectedVersionFromText('12'), 12)
    assert.equal(expectedVersionFromText('no_stream'), 'no_stream')
    assert.equal(expectedVersionFromText('-1'), undefined)
    assert.equal(expectedVersionFromText('soon'), undefined)
    // A number the text form would round (2^53 + 1) is refused, not taken as a neighbour.
    assert.equal(expectedVersionFromText('9007199254740993'), undefined)
    assert.equal(expectedVersionFromText('999999999999999'), 999_999_999_999_999)
  })
})
