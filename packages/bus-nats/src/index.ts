export {
  API_ROOT,
  HEADS_ROOT,
  HEADS_STREAM_NAME,
  HEADS_SUBJECTS,
  LOG_ROOT,
  LOG_SUBJECTS,
  STREAM_NAME,
  SUBMIT_SUBJECTS,
  headsPartsSubject,
  headsSubject,
  inboxPrefixFor,
  logFilter,
  logSubject,
  parseSubmitSubject,
  submitSubject,
  submitSubjectFor,
  tenantInboxPrefix,
} from './subjects.ts'
export type { LogFilterOptions, SubmitTarget } from './subjects.ts'
export {
  DEFAULT_DUPLICATE_WINDOW_MS,
  DEFAULT_STREAM_MAX_BYTES,
  DEFAULT_STREAM_MAX_MSG_SIZE,
  ensureStream,
  ensureStreamExists,
  eventplaneStreamConfig,
  streamInfo,
} from './stream.ts'
export type { EnsureStreamOptions } from './stream.ts'
export {
  DEFAULT_HEADS_PART_BYTES,
  DEFAULT_HEADS_STREAM_MAX_BYTES,
  ensureHeadsStream,
  headsStreamConfig,
  headsOfTenant,
  latestPublishedHeads,
  publishHeads,
} from './heads-stream.ts'
export type { HeadsStreamOptions, PublishedHeads, PublishedHeadsLookup, StoredHeads } from './heads-stream.ts'
export { HeadsPublisher, publishTenantHeads } from './heads-publisher.ts'
export type { HeadsPublishOutcome, HeadsPublisherOptions, HeadsRound } from './heads-publisher.ts'
export { EVENT_HEADERS, decodeEvent, encodeEvent, eventHeaders, readEventHeaders } from './codec.ts'
export { JS_API, isJsApiError, jetStreamDisabled, natsDriverError, natsFailure } from './nats-errors.ts'
export type { EventHeaderValues } from './codec.ts'
export { UntrustedLogMessage, acceptLogMessage } from './log-message.ts'
export type { LogMessage, UntrustedReason } from './log-message.ts'
export { Relay } from './relay.ts'
export { DEFAULT_RELAY_NAME } from './relay-options.ts'
export { RELAY_STOP_GRACE_MS } from './relay-stop.ts'
export type { RelayOptions } from './relay-options.ts'
export type { RelayState, RelayStats } from './relay.ts'
export { DEFAULT_STUCK_AFTER_MS, TransactionGuard } from './relay-guard.ts'
export type { TransactionGuardOptions } from './relay-guard.ts'
export { EVENTS_CHANNEL, LogWaker } from './pg-listener.ts'
export { RELAY_TRACE } from './relay-trace.ts'
export type {
  RelayDrainTrace,
  RelayHorizonTrace,
  RelayReadTrace,
  RelaySentTrace,
  RelayWakeTrace,
} from './relay-trace.ts'
export type { WakeReason } from './pg-listener.ts'
export { GATEWAY_APPLICATION_NAME, IMPORTED_REPLY_PREFIX, replyInTenantSpace, startGateway } from './gateway.ts'
export type { Gateway, GatewayOptions, GatewayRequest } from './gateway.ts'
export { submitIntent } from './gateway-client.ts'
export type { SubmitIntentOptions } from './gateway-client.ts'
export {
  DEFAULT_GATEWAY_CONCURRENCY,
  DEFAULT_GATEWAY_MAX_BYTES_IN_FLIGHT,
  DEFAULT_GATEWAY_MAX_IN_FLIGHT,
  DEFAULT_TENANT_LIMITS,
  resolveLimits,
} from './gateway-limits.ts'
export type { GatewayLimits, TenantLimits } from './gateway-limits.ts'
export type { RefusalReason } from './gateway-admission.ts'
export { DEFAULT_MAX_REQUEST_BYTES, PRINCIPAL_HEADER, defaultPrincipal } from './gateway-request.ts'
export type { SubmitReply, SubmitRequest, SubmitResult, WireError } from './gateway-request.ts'
export { consumerLag, consumerLags } from './consumer-lag.ts'
export type { ConsumerLag } from './consumer-lag.ts'
export { ensureConsumer, subscribe } from './subscription.ts'
export { DEFAULT_ACK_ATTEMPTS, DEFAULT_ACK_RETRY_DELAY_MS } from './ack-retry.ts'
export type { AckRetryOptions } from './ack-retry.ts'
export type { Delivery, EnsureConsumerOptions, SubscribeOptions, Subscription } from './subscription.ts'
export { tail } from './tail.ts'
export type { LiveIterable } from './live-iterable.ts'
export type { Tail, TailOptions } from './tail.ts'
export { SERVER_WAIT_MS, STALLED_WAIT_MS, StopWaits, afterDeadlineAndIo, serverWait } from './server-wait.ts'
export { unlessAborted } from './unless-aborted.ts'
export type { ServerWaitOutcome } from './server-wait.ts'
export { natsAuth } from './nats-auth.ts'
export { credsAuthenticator } from './nkeys.ts'
export type { NatsAuthSettings } from './nats-auth.ts'
export { errorFields, silentLogger } from './logger.ts'
export type { Logger } from './logger.ts'
export { DEFAULT_TENANT_LABEL_CAP, EventplaneMetrics, OTHER_TENANTS } from './ops/metrics.ts'
export type { EventplaneMetricsOptions, MetricsCollector } from './ops/metrics.ts'
export { natsCheck, postgresCheck, relayCheck, startOpsServer } from './ops/ops-server.ts'
export type { CheckOutcome, OpsServer, OpsServerOptions, ReadinessCheck } from './ops/ops-server.ts'
export { opsConfigFromEnv, processMetrics, serveOps } from './ops/ops-config.ts'
export type { OpsConfig, ServeOpsOptions } from './ops/ops-config.ts'
export {
  TRACEPARENT_HEADER,
  TRACER_NAME,
  eventParentContext,
  eventSpanContext,
  formatTraceparent,
  parseTraceparent,
  startEventSpan,
  traceparentOf,
} from './ops/trace-context.ts'
export type { EventForSpan } from './ops/trace-context.ts'
