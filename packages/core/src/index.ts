export { EventFactory } from './event-factory.ts'
export type { EventFactoryOptions, NewEventOptions } from './event-factory.ts'
export {
  EVENT_KINDS,
  EventEnvelopeSchema,
  asSystemEnvelope,
  ensureStreamRef,
  envelopeStream,
  isIsoInstant,
  isValidEnvelope,
  stampIntent,
  stampIntentMeasured,
  validateEnvelope,
  validateIntentDraft,
} from './envelope.ts'
export type {
  EnvelopeCheckOptions,
  EventEnvelope,
  EventKind,
  IntentDraft,
  RecordedEvent,
  ValidEnvelope,
} from './envelope.ts'
export { draftIntent } from './intent-draft.ts'
export type { DraftIntentOptions } from './intent-draft.ts'
export { EXPECTED_VERSION_RULE, expectedVersionFromText, isExpectedVersion } from './expected-version.ts'
export type { ExpectedVersion } from './expected-version.ts'
export { REDACTED_ACTOR, envelopeFromWire, fromWire, toWire } from './wire.ts'
export type { FromWireOptions, ToWireOptions, WireEvent, WireRedaction } from './wire.ts'
export { DEFAULT_MAX_DATA_BYTES, numericText, storedDataBytes, validateData } from './data.ts'
export type { EventData, JsonValue } from './data.ts'
export { NAME_LIMITS, validateCategory, validateName, validateStreamId, validateTenant, validateType } from './names.ts'
export type { NameKind } from './names.ts'
export {
  RESERVED_CATEGORY_PREFIX,
  RESERVED_EVENT_ID_VERSION,
  isReservedCategory,
  isReservedEventId,
  isSystemEnvelope,
  refuseReservedCategory,
  refuseReservedEventId,
} from './reserved.ts'
export { formatStream, isValidStreamRef, parseStream, streamRef } from './stream.ts'
export type { StreamRef, ValidStreamRef } from './stream.ts'
export { SchemaRegistry } from './schema-registry.ts'
export { START, compareCheckpoints, formatCheckpoint, parseCheckpoint } from './checkpoint.ts'
export type { Checkpoint } from './checkpoint.ts'
export {
  EventplaneError,
  Forbidden,
  IdempotencyConflict,
  InvalidData,
  InvalidEnvelope,
  InvalidName,
  PayloadTooLarge,
  RateLimited,
  SchemaViolation,
  StreamMismatch,
  TenantMismatch,
  UNAVAILABLE_CODES,
  Unavailable,
  UnknownSchema,
  WrongExpectedVersion,
  errorFromWire,
  isEventplaneError,
  isUnavailableError,
} from './errors.ts'
export type { ErrorCode, EventplaneErrorOptions } from './errors.ts'
