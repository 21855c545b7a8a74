-- eventplane 0017: the tenant-scoped reads as SQL functions the planner
-- inlines, with the tenant set before the scan by the plan's shape, not by
-- cost (issue 15). Applied by the migration runner (store-pg migrate()); safe
-- to re-apply. Each keeps its name, arguments, result type, owner and grants
-- (CREATE OR REPLACE keeps them; pg_proc.proacl compared before and after) and
-- returns the same rows in the same order.
--
-- Why: read_stream, read_category and read_correlation (0001, 0008, 0010)
-- were PL/pgSQL whose `RETURN QUERY` copies every whole row (`data` and
-- `hash` included) into a tuplestore that the caller's select then reads
-- back. A non-volatile, non-STRICT, SECURITY INVOKER `LANGUAGE sql` function
-- without SET clauses whose body is one SELECT is inlined into the caller's
-- statement: one plan, only the columns the caller selects, no copy. A page
-- of 1,000 costs the backend 0.5-0.7 of the CPU it did (docs/benchmarks.md
-- 2026-11-30 "the other reads inlined"). list_streams (0008) and chain_rows
-- (0011) stay PL/pgSQL: inlined, they measured no better (list_streams: its
-- rows are few and narrow) or worse (chain_rows selects every column anyway,
-- and its three scopes made the planner re-plan the body on every call).
--
-- How the tenant is set. Each function still sets eventplane.tenant for the
-- caller's transaction (set_config(..., true)), so the tenant_read policy
-- (tenant_id = current_setting('eventplane.tenant', true)) of an RLS-scoped
-- role (reader, writers) sees it. 0016 set it from an uncorrelated sub-select
-- in the WHERE clause; the planner merges `e.tenant_id = p_tenant` and the
-- policy's `tenant_id = current_setting(...)` into one equivalence class and
-- checks `current_setting(...) = p_tenant` as a one-time filter beside
-- `(SELECT set_config(...)) = p_tenant`: which of the two runs first is the
-- cheaper-first order of that filter (it runs the set_config first today; the
-- other way round a reader would get no rows, never another tenant's). Here
-- the setting is a one-row sub-select `s` in FROM (a volatile target list is
-- never pulled up or pushed into), and the events are read in a LATERAL
-- sub-select filtered by `e.tenant_id = s.tenant`: a lateral reference forces
-- a nested loop with `s` outside, and a nested loop fetches its outer row
-- before it starts the inner side, so every qual of the scan, the policy's
-- included, runs after set_config, whatever the costs. read_all_for_tenant
-- (0016) is redefined the same way. The tenant the scan filters on is the
-- value set_config returned: p_tenant ('' for NULL, and no tenant is empty, so
-- no rows, as before). A cross-tenant role (relay, operator, projector:
-- policies USING (true)) is scoped by that `e.tenant_id = s.tenant` alone.
--
-- The snapshot: inlined, a gap-safe predicate's pg_current_snapshot() is the
-- statement's, the one the scan reads with (as on the cross-tenant path). The
-- order: a nested loop over one outer row returns the inner side's rows in
-- its order, the ORDER BY of the lateral sub-select.

CREATE OR REPLACE FUNCTION eventplane.read_all_for_tenant(
  p_tenant text, p_after_tx xid8, p_after_position bigint, p_limit int)
RETURNS SETOF eventplane.events LANGUAGE sql STABLE AS $$
  SELECT e.*
    FROM (SELECT set_config('eventplane.tenant', p_tenant, true) AS tenant) s,
    LATERAL (
      SELECT * FROM eventplane.events e
       WHERE e.tenant_id = s.tenant
         AND (e.tx_id, e.global_position) > (p_after_tx, p_after_position)
         AND e.tx_id < pg_snapshot_xmin(pg_current_snapshot())
       ORDER BY e.tx_id, e.global_position
       LIMIT p_limit) e
$$;

-- One branch per direction; a one-time filter on p_backward runs only one.
CREATE OR REPLACE FUNCTION eventplane.read_stream(
  p_tenant text, p_category text, p_stream_id text, p_from bigint, p_backward boolean, p_limit int)
RETURNS SETOF eventplane.events LANGUAGE sql STABLE AS $$
  SELECT e.*
    FROM (SELECT set_config('eventplane.tenant', p_tenant, true) AS tenant) s,
    LATERAL (
      (SELECT * FROM eventplane.events e
        WHERE p_backward IS NOT TRUE
          AND e.tenant_id = s.tenant AND e.category = p_category AND e.stream_id = p_stream_id
          AND e.stream_version >= p_from
        ORDER BY e.stream_version LIMIT p_limit)
      UNION ALL
      (SELECT * FROM eventplane.events e
        WHERE p_backward IS TRUE
          AND e.tenant_id = s.tenant AND e.category = p_category AND e.stream_id = p_stream_id
          AND e.stream_version <= p_from
        ORDER BY e.stream_version DESC LIMIT p_limit)) e
$$;

CREATE OR REPLACE FUNCTION eventplane.read_category(
  p_tenant text, p_category text, p_after_tx xid8, p_after_position bigint, p_limit int)
RETURNS SETOF eventplane.events LANGUAGE sql STABLE AS $$
  SELECT e.*
    FROM (SELECT set_config('eventplane.tenant', p_tenant, true) AS tenant) s,
    LATERAL (
      SELECT * FROM eventplane.events e
       WHERE e.tenant_id = s.tenant AND e.category = p_category
         AND (e.tx_id, e.global_position) > (p_after_tx, p_after_position)
         AND e.tx_id < pg_snapshot_xmin(pg_current_snapshot())
       ORDER BY e.tx_id, e.global_position
       LIMIT p_limit) e
$$;

-- A chain's events: its root through the primary key, the rest through the
-- partial index (as 0010).
CREATE OR REPLACE FUNCTION eventplane.read_correlation(p_tenant text, p_correlation_id uuid, p_limit int)
RETURNS SETOF eventplane.events LANGUAGE sql STABLE AS $$
  SELECT e.*
    FROM (SELECT set_config('eventplane.tenant', p_tenant, true) AS tenant) s,
    LATERAL (
      SELECT * FROM (
          SELECT * FROM eventplane.events e
           WHERE e.event_id = p_correlation_id AND e.correlation_id = p_correlation_id AND e.tenant_id = s.tenant
          UNION ALL
          SELECT * FROM eventplane.events e
           WHERE e.tenant_id = s.tenant AND e.correlation_id = p_correlation_id AND e.correlation_id <> e.event_id
        ) e
       ORDER BY e.tx_id, e.global_position
       LIMIT p_limit) e
$$;
