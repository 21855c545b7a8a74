-- eventplane 0016: the tenant-scoped gap-safe read as a SQL function the
-- planner inlines (issue 15). Applied by the migration runner (store-pg
-- migrate()); safe to re-apply. Same name, arguments, result type (SETOF
-- eventplane.events), owner and grants (CREATE OR REPLACE keeps them), and
-- the same rows in the same order: the tenant's rows after the checkpoint
-- whose transaction is older than every transaction still running, by
-- (tx_id, global_position), at most p_limit of them.
--
-- Why: 0001's PL/pgSQL version ran `RETURN QUERY`, which copies every row
-- whole (`data` and `hash` included) into a tuplestore before the caller's
-- select reads it back: 1.22 ms a warm page of 1,000 against 0.70 ms for the
-- same page on the cross-tenant query, 0.83 ms inlined (EXPLAIN ANALYZE,
-- 200,000 events of one tenant, docs/benchmarks.md 2026-11-30 "the tenant
-- page"). A non-volatile,
-- non-STRICT, SECURITY INVOKER `LANGUAGE sql` function without SET clauses
-- whose body is one SELECT is inlined into the caller's statement: one plan,
-- an index scan of events_global_order_idx under a Limit, only the columns
-- the caller selects, no copy.
--
-- Tenant isolation, as before: SECURITY INVOKER, so row level security of
-- the caller's role decides what it may see, and the explicit
-- `e.tenant_id = p_tenant` is what scopes a cross-tenant role (relay,
-- operator, projector: their policies are USING (true)). The tenant is still
-- set for the caller's transaction (set_config(..., true)), now from an
-- uncorrelated sub-select: it becomes an InitPlan of a one-time filter in a
-- Result node above the scan, evaluated once before the scan returns its first
-- row, so the tenant_read policy (current_setting('eventplane.tenant')) of an
-- RLS-scoped role sees it. (A role without the tenant set would see no row:
-- the failure is closed, and read-all.test.ts reads through the reader role.)
-- set_config is volatile and the function STABLE: the one side effect is the
-- transaction-local setting 0001's version made too.
--
-- The snapshot: inlined, the predicate's pg_current_snapshot() is the
-- statement's, the one the scan reads with (as on the cross-tenant path).
CREATE OR REPLACE FUNCTION eventplane.read_all_for_tenant(
  p_tenant text, p_after_tx xid8, p_after_position bigint, p_limit int)
RETURNS SETOF eventplane.events LANGUAGE sql STABLE AS $$
  SELECT * FROM eventplane.events e
   WHERE (SELECT set_config('eventplane.tenant', p_tenant, true)) = p_tenant
     AND (e.tx_id, e.global_position) > (p_after_tx, p_after_position)
     AND e.tx_id < pg_snapshot_xmin(pg_current_snapshot())
     AND e.tenant_id = p_tenant
   ORDER BY e.tx_id, e.global_position
   LIMIT p_limit
$$;

ALTER FUNCTION eventplane.read_all_for_tenant(text, xid8, bigint, int) OWNER TO eventplane_owner;
REVOKE ALL ON FUNCTION eventplane.read_all_for_tenant(text, xid8, bigint, int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION eventplane.read_all_for_tenant(text, xid8, bigint, int)
  TO eventplane_intent_writer, eventplane_fact_writer, eventplane_reader, eventplane_relay, eventplane_operator,
     eventplane_projector;
