/**
 * fast-check arbitraries for gateway submit requests: plans, not bytes. A
 * plan names a subject, a body (a near-valid envelope with one field mutated,
 * random JSON, raw bytes, filler, or a resend of an accepted request) and a
 * principal header; `materialize` turns it into the request, with fresh ids
 * and marker strings in the data.
 */
import fc from 'fast-check'

export const ENVELOPE_KEYS = [
  'event_id',
  'tenant_id',
  'kind',
  'stream',
  'type',
  'schema_version',
  'data',
  'correlation_id',
  'causation_id',
  'caused_by',
  'occurred_at',
] as const

export interface SubjectPlan {
  tenant: string
  category: string
  id: string
  shape: 'exact' | 'extra_token' | 'missing_token'
}

export type DataPlan =
  | { kind: 'json'; value: Record<string, unknown> }
  | { kind: 'unicode'; key: string; text: string }
  | { kind: 'nul'; where: 'value' | 'key' | 'nested' }
  | { kind: 'lone_surrogate'; unit: string }
  | { kind: 'deep'; depth: number; arrays: boolean }
  | { kind: 'huge'; bytes: number; unit: 'ascii' | 'emoji' | 'escaped' }
  | { kind: 'not_object'; value: unknown }
  | { kind: 'odd_keys' }
  | { kind: 'marked_key_over_bad_value' }

export type Mutation =
  | { field: 'none' }
  | {
      field: 'tenant_id' | 'category' | 'id' | 'type' | 'kind' | 'schema_version' | 'occurred_at' | 'caused_by'
      value: unknown
    }
  | { field: 'event_id' | 'correlation_id' | 'causation_id'; value: unknown }
  /** Caused by an accepted event: in its chain, in another chain, or one of another tenant (see materialize). */
  | { field: 'lineage'; parent: 'accepted' | 'other_chain' | 'other_tenant'; pick: number }
  | { field: 'missing'; key: (typeof ENVELOPE_KEYS)[number] }
  | { field: 'extra'; key: string; value: unknown }
  | { field: 'stream_extra'; key: string; value: unknown }
  | { field: 'stream'; value: unknown }
  | { field: 'event'; value: unknown }

export type VersionPlan =
  | { kind: 'omit' | 'any' | 'no_stream' | 'current' }
  | { kind: 'ahead'; by: number }
  | { kind: 'invalid'; value: unknown }

export type BodyPlan =
  | { kind: 'envelope'; mutation: Mutation; data: DataPlan; version: VersionPlan; extraField: string | undefined }
  | { kind: 'json'; value: unknown }
  | { kind: 'bytes'; bytes: Uint8Array }
  | { kind: 'filler'; size: number; byte: number }
  | {
      kind: 'resend'
      pick: number
      variant: 'identical' | 'changed_data' | 'changed_principal' | 'other_stream' | 'other_tenant'
    }

export interface SubmitPlan {
  subject: SubjectPlan
  body: BodyPlan
  /** The raw `Eventplane-Principal` header value (nats.js trims it), or none. */
  principal: string | undefined
}

/** A weighted arm of `fc.oneof`. */
const known = <T>(arbitrary: fc.Arbitrary<T>, weight = 1) => ({ arbitrary, weight })

/** Characters that cannot be in a NATS subject token at all: `.`, whitespace, controls. */
const NOT_IN_SUBJECT = /[.\s\p{Cc}]/gu

const validToken = fc.stringMatching(/^[A-Za-z0-9_-]{1,24}$/)
const validIdToken = fc.stringMatching(/^[A-Za-z0-9_:-]{1,40}$/)
const unicodeToken = fc
  .string({ unit: 'grapheme', minLength: 1, maxLength: 12 })
  .map((s) => s.replace(NOT_IN_SUBJECT, ''))
  .filter((s) => s.length > 0)
const specialToken = fc
  .tuple(
    validToken,
    fc.constantFrom('$', ':', '-', '*', '>', '$JS', '%', '#', '@', 'é', 'Ω', '😀', '\u200b', '\uFFFD', '/'),
    validToken,
  )
  .map(([a, special, b]) => a + special + b)
/** Long tokens, biased to the 64- and 128-character limits; ASCII so a subject stays under the 4 KiB control line. */
const longToken = fc
  .tuple(
    fc.oneof(fc.constantFrom(63, 64, 65, 127, 128, 129), fc.integer({ min: 60, max: 900 })),
    fc.constantFrom('a', 'Z', '9', '_', '-', ':'),
  )
  .map(([n, ch]) => ch.repeat(n))

function token(valid: fc.Arbitrary<string>): fc.Arbitrary<string> {
  return fc.oneof(valid, unicodeToken, specialToken, longToken, fc.constantFrom('*', '>'))
}

const tenantName = fc.oneof(fc.constantFrom('acme', 'globex'), validToken)

/** Mostly valid names, so most requests get past the subject check; one in five has fuzzed tokens or shape. */
const subjectPlan: fc.Arbitrary<SubjectPlan> = fc.oneof(
  known(
    fc.record({ tenant: tenantName, category: validToken, id: validIdToken, shape: fc.constant('exact' as const) }),
    4,
  ),
  known(
    fc.record({
      tenant: token(validToken),
      category: token(validToken),
      id: token(validIdToken),
      shape: fc.oneof(
        known(fc.constant('exact' as const), 8),
        known(fc.constantFrom('extra_token' as const, 'missing_token' as const)),
      ),
    }),
  ),
)

const oddValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.integer(), { maxLength: 3 }),
  fc.object({ maxDepth: 1 }),
)
const nameValue = fc.oneof(validToken, validIdToken, unicodeToken, specialToken, longToken, fc.constant(''), oddValue)
const idValue = fc.oneof(
  fc.constantFrom('fresh_uuid', 'self', null),
  fc.uuid(),
  fc.uuid().map((u) => u.toUpperCase()),
  oddValue,
)
/**
 * A real instant between 1970 and 2100 written with a real-world UTC offset
 * and 0–6 fraction digits. Strings that `Date.parse` takes but are no
 * calendar instant (2024-02-30, +16:00) have their own test: the gateway
 * answers them with bus.internal today.
 */
const instant = fc
  .record({
    ms: fc.integer({ min: 0, max: 4_102_444_800_000 }),
    offsetMinutes: fc.integer({ min: -12 * 60, max: 14 * 60 }),
    fraction: fc.stringMatching(/^\d{0,6}$/),
  })
  .map(({ ms, offsetMinutes, fraction }) => {
    const local = new Date(ms + offsetMinutes * 60_000).toISOString().slice(0, 19)
    const sign = offsetMinutes < 0 ? '-' : '+'
    const abs = Math.abs(offsetMinutes)
    const zone =
      offsetMinutes === 0
        ? 'Z'
        : `${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`
    return `${local}${fraction === '' ? '' : `.${fraction}`}${zone}`
  })
const notAnInstant = fc.oneof(
  fc.constantFrom(
    '2024-13-01T00:00:00Z',
    '2024-01-01 00:00:00Z',
    '2024-01-01T00:00:00',
    '2024-01-01T00:00:60Z',
    'yesterday',
    '',
    '2024-1-1T0:0:0Z',
  ),
  fc.string({ maxLength: 30 }),
  oddValue,
)

const nameMutation = <F extends 'tenant_id' | 'category' | 'id' | 'type'>(field: F, weight: number) =>
  known(
    fc.record({
      field: fc.constant(field),
      value: field === 'tenant_id' ? fc.oneof(fc.constantFrom('acme', 'globex'), nameValue) : nameValue,
    }),
    weight,
  )

/** Mostly untouched envelopes; otherwise one field changed, often to something valid that no longer matches the subject. */
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  known(fc.constant({ field: 'none' as const }), 20),
  nameMutation('tenant_id', 3),
  nameMutation('category', 2),
  nameMutation('id', 2),
  nameMutation('type', 2),
  known(
    fc.record({
      field: fc.constant('kind' as const),
      value: fc.oneof(
        known(fc.constantFrom('fact', 'internal'), 2),
        fc.constantFrom('intent', 'INTENT', 'intent ', ''),
        oddValue,
      ),
    }),
    3,
  ),
  known(
    fc.record({
      field: fc.constantFrom('event_id' as const, 'correlation_id' as const, 'causation_id' as const),
      value: idValue,
    }),
    3,
  ),
  known(
    fc.record({
      field: fc.constant('lineage' as const),
      parent: fc.constantFrom('accepted' as const, 'other_chain' as const, 'other_tenant' as const),
      pick: fc.nat(),
    }),
    3,
  ),
  known(
    fc.record({
      field: fc.constant('schema_version' as const),
      value: fc.oneof(fc.integer({ min: 1, max: 32767 }), fc.constantFrom(0, -1, 32768, 1.5, '1', null), fc.integer()),
    }),
  ),
  known(fc.record({ field: fc.constant('occurred_at' as const), value: fc.oneof(instant, notAnInstant) }), 2),
  known(
    fc.record({
      field: fc.constant('caused_by' as const),
      value: fc.oneof(fc.constantFrom('controller:relay', 'nats:globex', ''), oddValue),
    }),
  ),
  known(fc.record({ field: fc.constant('missing' as const), key: fc.constantFrom(...ENVELOPE_KEYS) })),
  known(
    fc.record({
      field: fc.constant('extra' as const),
      key: fc.string({ maxLength: 12 }).filter((k) => !(ENVELOPE_KEYS as readonly string[]).includes(k)),
      value: oddValue,
    }),
  ),
  known(
    fc.record({
      field: fc.constant('stream_extra' as const),
      key: fc.string({ maxLength: 12 }).filter((k) => k !== 'category' && k !== 'id'),
      value: oddValue,
    }),
  ),
  known(fc.record({ field: fc.constant('stream' as const), value: oddValue })),
  known(
    fc.record({
      field: fc.constant('event' as const),
      value: fc.oneof(fc.array(oddValue, { maxLength: 3 }), fc.string(), fc.constant(null), fc.integer()),
    }),
  ),
)

/** Sizes near the data limit (64 KiB), the request limit (80 KiB), and anywhere up to ~1 MB (server max_payload is 1 MiB). */
const size = fc.oneof(
  fc.integer({ min: 0, max: 2000 }),
  fc.integer({ min: 65_536 - 600, max: 65_536 + 200 }),
  fc.integer({ min: 81_920 - 600, max: 81_920 + 200 }),
  fc.integer({ min: 0, max: 1_000_000 }),
)

const dataPlan: fc.Arbitrary<DataPlan> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      kind: fc.constant('json' as const),
      value: fc.dictionary(
        fc.string({ unit: 'grapheme', maxLength: 8 }),
        fc.jsonValue({ maxDepth: 4, stringUnit: 'grapheme' }),
        { maxKeys: 6 },
      ),
    }),
  },
  fc.record({
    kind: fc.constant('unicode' as const),
    key: fc.string({ unit: 'grapheme', maxLength: 20 }),
    text: fc.oneof(
      ...(['grapheme', 'grapheme-composite', 'binary'] as const).map((unit) => fc.string({ unit, maxLength: 200 })),
    ),
  }),
  fc.record({
    kind: fc.constant('nul' as const),
    where: fc.constantFrom('value' as const, 'key' as const, 'nested' as const),
  }),
  fc.record({ kind: fc.constant('lone_surrogate' as const), unit: fc.constantFrom('\ud800', '\udfff', '\ud83d') }),
  fc.record({
    kind: fc.constant('deep' as const),
    depth: fc.oneof(fc.integer({ min: 62, max: 67 }), fc.integer({ min: 1, max: 120 })),
    arrays: fc.boolean(),
  }),
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('huge' as const),
      bytes: size,
      unit: fc.constantFrom('ascii' as const, 'emoji' as const, 'escaped' as const),
    }),
  },
  fc.record({
    kind: fc.constant('not_object' as const),
    value: fc.oneof(fc.array(oddValue, { maxLength: 2 }), fc.string(), fc.integer(), fc.constant(null)),
  }),
  fc.constant({ kind: 'odd_keys' as const }),
  fc.constant({ kind: 'marked_key_over_bad_value' as const }),
)

const versionPlan: fc.Arbitrary<VersionPlan> = fc.oneof(
  known(fc.constant({ kind: 'omit' as const }), 4),
  known(fc.constantFrom({ kind: 'any' as const }, { kind: 'no_stream' as const }, { kind: 'current' as const }), 4),
  known(fc.record({ kind: fc.constant('ahead' as const), by: fc.integer({ min: 1, max: 5 }) })),
  known(
    fc.record({
      kind: fc.constant('invalid' as const),
      value: fc.constantFrom(-1, 1.5, '1', null, true, 2 ** 53, 'NO_STREAM', {}, []),
    }),
  ),
)

const bodyPlan: fc.Arbitrary<BodyPlan> = fc.oneof(
  {
    weight: 12,
    arbitrary: fc.record({
      kind: fc.constant('envelope' as const),
      mutation,
      data: dataPlan,
      version: versionPlan,
      extraField: fc.oneof(
        known(fc.constant(undefined), 20),
        known(fc.string({ maxLength: 10 }).filter((k) => k !== 'event' && k !== 'expectedVersion')),
      ),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('json' as const),
      value: fc.oneof(fc.jsonValue({ maxDepth: 3 }), fc.record({ event: fc.object({ maxDepth: 2 }) })),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('bytes' as const), bytes: fc.uint8Array({ maxLength: 300 }) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('filler' as const), size, byte: fc.integer({ min: 0, max: 255 }) }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('resend' as const),
      pick: fc.nat(),
      variant: fc.constantFrom(
        'identical' as const,
        'changed_data' as const,
        'changed_principal' as const,
        'other_stream' as const,
        'other_tenant' as const,
      ),
    }),
  },
)

const principal = fc.oneof(
  known(fc.constant(undefined), 10),
  known(fc.stringMatching(/^[\x21-\x7e]{1,120}$/), 3),
  known(fc.constantFrom('user:alice', ' user:bob ', 'has space', 'x'.repeat(121), 'ünïcode', '\u00a0padded\u00a0', '')),
  known(fc.string({ unit: 'grapheme', maxLength: 30 }).map((s) => s.replace(/[\r\n\p{Cc}]/gu, ''))),
)

export const submitPlan: fc.Arbitrary<SubmitPlan> = fc.record({ subject: subjectPlan, body: bodyPlan, principal })

const plain = (
  id: string,
  patch: Partial<Extract<BodyPlan, { kind: 'envelope' }>> = {},
  principal?: string,
): SubmitPlan => ({
  subject: { tenant: 'acme', category: 'orders', id, shape: 'exact' },
  body: {
    kind: 'envelope',
    mutation: { field: 'none' },
    data: { kind: 'json', value: { qty: 1 } },
    version: { kind: 'omit' },
    extraField: undefined,
    ...patch,
  },
  principal,
})

/**
 * Plans run before the random ones, so every outcome class is seen in every run whatever the seed. The first ones
 * are the bad input each audited break of the gateway lets through (docs/testing.md's rows for gateway-fuzz), so
 * such a break fails within the first few cases: a child in another chain (`checkLineage` skipped), an expected
 * version of -1 (`isExpectedVersion`), an unknown request field, a claimed principal that is no principal, a fact,
 * and a good principal (stamped as claimed, not `nats:…`). Then one of each other class of the arbitraries.
 */
export const EXAMPLE_PLANS: SubmitPlan[] = [
  plain('ex-valid'),
  plain('ex-child-other-chain', { mutation: { field: 'lineage', parent: 'other_chain', pick: 0 } }),
  plain('ex-version-minus-one', { version: { kind: 'invalid', value: -1 } }),
  plain('ex-request-field', { extraField: 'extra' }),
  plain('ex-principal', {}, 'has space'),
  plain('ex-fact', { mutation: { field: 'kind', value: 'fact' } }),
  plain('ex-no-stream', { version: { kind: 'no_stream' } }, 'user:alice'),
  plain('ex-no-stream', { version: { kind: 'ahead', by: 2 } }),
  plain('ex-tenant', { mutation: { field: 'tenant_id', value: 'globex' } }),
  plain('ex-stream', { mutation: { field: 'category', value: 'invoices' } }),
  plain('ex-self-cause', { mutation: { field: 'causation_id', value: 'self' } }),
  plain('ex-caused', { mutation: { field: 'causation_id', value: 'fresh_uuid' } }),
  { ...plain('ex-globex'), subject: { tenant: 'globex', category: 'orders', id: 'ex-globex', shape: 'exact' } },
  plain('ex-child', { mutation: { field: 'lineage', parent: 'accepted', pick: 0 } }),
  plain('ex-child-of-globex', { mutation: { field: 'lineage', parent: 'other_tenant', pick: 0 } }),
  plain('ex-micros', { mutation: { field: 'occurred_at', value: '2024-05-01T12:00:00.123456+05:30' } }),
  plain('ex-data-too-big', { data: { kind: 'huge', bytes: 70_000, unit: 'ascii' } }),
  plain('ex-data-at-limit', { data: { kind: 'huge', bytes: 65_400, unit: 'emoji' } }),
  plain('ex-nul', { data: { kind: 'nul', where: 'nested' } }),
  plain('ex-deep-ok', { data: { kind: 'deep', depth: 63, arrays: false } }),
  plain('ex-deep-too-deep', { data: { kind: 'deep', depth: 64, arrays: true } }),
  plain('ex-odd-keys', { data: { kind: 'odd_keys' } }),
  plain('ex-key-marker', { data: { kind: 'marked_key_over_bad_value' } }),
  { ...plain('ex-subject'), subject: { tenant: 'acme', category: 'or$ders', id: 'ex-subject', shape: 'exact' } },
  { ...plain('ex-filler'), body: { kind: 'filler', size: 900_000, byte: 0x7b } },
  { ...plain('ex-resend'), body: { kind: 'resend', pick: 0, variant: 'identical' } },
  { ...plain('ex-resend'), body: { kind: 'resend', pick: 1, variant: 'changed_data' } },
  { ...plain('ex-resend'), body: { kind: 'resend', pick: 0, variant: 'other_tenant' } },
  { ...plain('ex-resend'), body: { kind: 'resend', pick: 1, variant: 'changed_principal' } },
  // One of each remaining class: expected versions, envelope fields, data, bodies, subjects, principals.
  plain('ex-version-any', { version: { kind: 'any' } }),
  plain('ex-version-current', { version: { kind: 'current' } }),
  plain('ex-version-text', { version: { kind: 'invalid', value: '1' } }),
  plain('ex-version-fraction', { version: { kind: 'invalid', value: 1.5 } }),
  plain('ex-id-empty', { mutation: { field: 'id', value: '' } }),
  plain('ex-type-dotted', { mutation: { field: 'type', value: 'a.b' } }),
  plain('ex-kind-case', { mutation: { field: 'kind', value: 'INTENT' } }),
  plain('ex-event-id', { mutation: { field: 'event_id', value: 'not-a-uuid' } }),
  plain('ex-correlation-null', { mutation: { field: 'correlation_id', value: null } }),
  plain('ex-schema-zero', { mutation: { field: 'schema_version', value: 0 } }),
  plain('ex-not-an-instant', { mutation: { field: 'occurred_at', value: 'yesterday' } }),
  plain('ex-caused-by', { mutation: { field: 'caused_by', value: 'controller:relay' } }),
  plain('ex-missing-type', { mutation: { field: 'missing', key: 'type' } }),
  plain('ex-envelope-field', { mutation: { field: 'extra', key: 'extra', value: 1 } }),
  plain('ex-stream-field', { mutation: { field: 'stream_extra', key: 'extra', value: 1 } }),
  plain('ex-stream-null', { mutation: { field: 'stream', value: null } }),
  plain('ex-event-array', { mutation: { field: 'event', value: [1] } }),
  plain('ex-unicode', { data: { kind: 'unicode', key: 'ключ', text: 'e\u0301 😀 \u200b' } }),
  plain('ex-lone-surrogate', { data: { kind: 'lone_surrogate', unit: '\ud800' } }),
  plain('ex-data-array', { data: { kind: 'not_object', value: [1, 2] } }),
  { ...plain('ex-json'), body: { kind: 'json', value: { event: {} } } },
  { ...plain('ex-bytes'), body: { kind: 'bytes', bytes: new Uint8Array([0xff, 0xfe, 0x7b]) } },
  {
    ...plain('ex-extra-token'),
    subject: { tenant: 'acme', category: 'orders', id: 'ex-extra-token', shape: 'extra_token' },
  },
  { ...plain('ex-missing-token'), subject: { tenant: 'acme', category: 'orders', id: 'x', shape: 'missing_token' } },
  {
    ...plain('ex-unknown-tenant'),
    subject: { tenant: 'initech', category: 'orders', id: 'ex-unknown', shape: 'exact' },
  },
  { ...plain('ex-long-id'), subject: { tenant: 'acme', category: 'orders', id: 'a'.repeat(129), shape: 'exact' } },
  plain('ex-principal-padded', {}, ' user:bob '),
  plain('ex-principal-long', {}, 'x'.repeat(121)),
  plain('ex-principal-empty', {}, ''),
  { ...plain('ex-resend'), body: { kind: 'resend', pick: 2, variant: 'other_stream' } },
]
