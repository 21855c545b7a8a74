/**
 * The postgres.js types of the driver this package bundles and patches (docs/deploying.md, "A PostgreSQL session
 * ended inside a transaction"). The other packages, and applications, take them from here rather than naming
 * `postgres` themselves: store-pg is the driver's one owner, so an install holds one copy, and `tests/layering.test.ts`
 * fails on any other package's import of `postgres`.
 */
export type { JSONValue, PendingQuery, ReservedSql, Row, Sql, TransactionSql } from 'postgres'
