/**
 * nats.js's `connect`, for session.ts to import on the first NATS connection. nats.js is CommonJS: a dynamic
 * `import()` of it straight from session.ts would have only a `default` export in an esbuild bundle (the suite's
 * and the demo's, scripts/cli-bundle.ts), where node itself finds the named ones; imported statically here, both
 * see `connect`.
 */
export { connect } from '@nats-io/transport-node'
