-- eventplane 0019: the tenant reads evaluate the log's horizon once per read.
-- Applied by the migration runner (store-pg migrate()); safe to re-apply.
--
-- Why: 0018's read_all_for_tenant, read_category and chain_heads call
-- eventplane.log_horizon as a bare predicate, which PostgreSQL may evaluate
-- many times per read. The planner calls it while estimating the condition
-- (its arguments are plan constants: pg_current_snapshot() is stable, the
-- checkpoint a parameter or a constant) whenever it makes a custom plan:
-- every unprepared statement, the first five runs of a prepared one, the
-- first five of chain_heads' cached plan. The executor evaluates it once per
-- scan only where it is an index key (events_global_order_idx); where the
-- plan reads the tenant through another index (a small tenant: the
-- (tenant, category, stream, version) key), it is a filter, evaluated once
-- per row the filter sees, and STABLE caches nothing. Counted with
-- track_functions = 'all' (docs/benchmarks.md, 2026-11-30 15:20 section), a
-- tenant of 6 events read from the start: 7 calls per read under a custom
-- plan, 6 under a generic one; each may read every session when rows wait
-- above xmin. In a scalar subquery (an InitPlan) the planner leaves it
-- alone and the executor runs it once, when the scan first needs it: inside
-- the LATERAL inner side, so after the tenant's set_config, as before (the
-- inner side starts only once the outer row, with the tenant set, exists;
-- where it is a filter, only when a row reaches it). The functions stay
-- inlined (a body with a sublink is inlined) and return the same rows: one
-- predicate changed each. CREATE OR REPLACE keeps names, arguments, owners
-- and grants.
CREATE OR REPLACE FUNCTION eventplane.read_all_for_tenant(
  p_tenant text, p_after_tx xid8, p_after_position bigint, p_limit int)
RETURNS SETOF eventplane.events LANGUAGE sql STABLE AS $$
  SELECT e.*
    FROM (SELECT set_config('eventplane.tenant', p_tenant, true) AS tenant) s,
    LATERAL (
      SELECT * FROM eventplane.events e
       WHERE e.tenant_id = s.tenant
         AND (e.tx_id, e.global_position) > (p_after_tx, p_after_position)
         AND e.tx_id < (SELECT eventplane.log_horizon(pg_current_snapshot(), p_after_tx, p_after_position))
       ORDER BY e.tx_id, e.global_position
       LIMIT p_limit) e
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
         AND e.tx_id < (SELECT eventplane.log_horizon(pg_current_snapshot(), p_after_tx, p_after_position))
       ORDER BY e.tx_id, e.global_position
       LIMIT p_limit) e
$$;

CREATE OR REPLACE FUNCTION eventplane.chain_heads(p_tenant text)
RETURNS TABLE (at_tx_id xid8, at_position bigint, category text, stream_id text, stream_version bigint, hash bytea)
LANGUAGE plpgsql AS $$
DECLARE
  v_tx xid8;
  v_pos bigint;
BEGIN
  PERFORM set_config('eventplane.tenant', p_tenant, true);
  SELECT e.tx_id, e.global_position INTO v_tx, v_pos FROM eventplane.events e
   WHERE e.tenant_id = p_tenant AND e.tx_id < (SELECT eventplane.log_horizon(pg_current_snapshot()))
   ORDER BY e.tx_id DESC, e.global_position DESC LIMIT 1;
  IF v_tx IS NULL THEN
    RETURN;
  END IF;
  RETURN QUERY
    WITH RECURSIVE streams AS (
      (SELECT e.category, e.stream_id FROM eventplane.events e
        WHERE e.tenant_id = p_tenant ORDER BY e.category, e.stream_id LIMIT 1)
      UNION ALL
      SELECT next.category, next.stream_id FROM streams s, LATERAL (
        SELECT e.category, e.stream_id FROM eventplane.events e
         WHERE e.tenant_id = p_tenant AND (e.category, e.stream_id) > (s.category, s.stream_id)
         ORDER BY e.category, e.stream_id LIMIT 1) next
    )
    SELECT v_tx, v_pos, s.category, s.stream_id, last.stream_version, last.hash
      FROM streams s, LATERAL (
        SELECT e.stream_version, e.hash FROM eventplane.events e
         WHERE e.tenant_id = p_tenant AND e.category = s.category AND e.stream_id = s.stream_id
           AND (e.tx_id, e.global_position) <= (v_tx, v_pos)
         ORDER BY e.stream_version DESC LIMIT 1) last;
END $$;
