-- eventplane 0020: a reader positioned in a transaction that has ended reads
-- the rest of that transaction, whatever else still runs.
-- Applied by the migration runner (store-pg migrate()); safe to re-apply.
--
-- Why: 0018's horizon is sound but not monotonic across one reader's pages.
-- Page 1 may pass an xid X (another database's session, found by the look-up)
-- and return rows of a transaction T > X up to (T, p); page 2 may stop at X
-- again: X ended between that page's snapshot and its look-up (no longer
-- found, so it stops the read), or the page took the relay's cheap rule,
-- xmin(S), while X still runs. The horizon is then at or below X < T, and the
-- page came back empty in the middle of T, whose remaining rows are committed
-- and visible: a catch-up reader took that for the end of the log (and ended
-- short; CI, catch-up-live: checkpoint 209267:29), an atomic batch could be
-- split across two exports or reads, the relay stalled mid-transaction until
-- its next exact look-up (docs/testing.md, "Flake fixed 2026-12-01").
--
-- The floor. A read after the checkpoint (T, p) returns rows with
-- (tx_id, global_position) > (T, p): tx_id >= T, so a horizon of T + 1 adds
-- to any lower one only rows of T itself. When T is final in the reading
-- statement's snapshot S (pg_visible_in_snapshot(T, S): below xmax(S) and
-- not in xip(S), so it had ended, committed or aborted, when S was taken),
-- every row T will ever have is visible in S: they are safe to return. So
-- the horizon is at least T + 1 when T is final. T in xip(S) (still running),
-- at or above xmax(S) (not yet started or after S): no floor. T below
-- xmin(S): T + 1 <= xmin(S), nothing changes; so neither for the start
-- checkpoint (T = 0) nor for a reader behind every running transaction (the
-- relay caught up, mostly). An aborted T has no row: the floor passes
-- nothing. The floor never exceeds xmax(S) (T < xmax(S)).
--
-- A T still running gets no floor: none of its rows is visible in S, so no
-- read would change, but the horizon would then claim, wrongly, that nothing
-- after the checkpoint can be committed below it later. The reader's own
-- transaction is not in its own xip(S), so counts as final: a reader inside
-- it reads its own rows so far, as 0018's horizon already let it (its later
-- rows take higher positions, after that checkpoint).
--
-- eventplane.snapshot_horizon(S, T) is the horizon S alone proves for a
-- reader after T: xmin(S), raised to T + 1 when T is final in S. No session
-- look-up, no table access: the relay's cheap rule (store-pg read-all.ts,
-- HorizonRule 'xmin') takes it instead of pg_snapshot_xmin(S), so a relay
-- stopped mid-transaction by xmin goes on to the transaction's end.
-- IMMUTABLE SQL (a function of its arguments only), so the planner inlines it
-- into the caller's expression: no function call, and with the reader's
-- pg_current_snapshot() it is a stable expression, still an index key of
-- events_global_order_idx (one value per scan, not a filter). PostgreSQL 15
-- has no xid8 arithmetic: T + 1 goes through numeric (xid8 is unsigned 64-bit),
-- computed only when the floor applies (T at or above xmin(S)). Measured: a
-- few µs per read at most, within the machine's noise, on a ~33 µs empty read
-- (docs/benchmarks/journal-2026-12-01.md).
--
-- eventplane.log_horizon keeps 0018's rule and takes the floor on every path:
-- the early returns (nothing runs, an xip without xids: xmin(S) before, now
-- the floor) and the look-up's result (greatest of it and the floor). Its
-- probe now looks for a row at or above the floor instead of xmin(S): the
-- floor is a sound horizon for this checkpoint, so with no visible row after
-- the checkpoint at or above it, any higher horizon returns the same rows, and
-- the look-up is skipped (a reader in the middle of an ended transaction with
-- nothing after it, before: a look-up). Everything else is 0018's text; its
-- comment (0018_log_horizon.sql) still explains the look-up. The tenant
-- functions (0019) pass their checkpoint already: unchanged.
CREATE OR REPLACE FUNCTION eventplane.snapshot_horizon(p_snapshot pg_snapshot, p_after_tx xid8 DEFAULT '0')
RETURNS xid8 LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE
    WHEN p_after_tx >= pg_catalog.pg_snapshot_xmin(p_snapshot)
     AND pg_catalog.pg_visible_in_snapshot(p_after_tx, p_snapshot)
    THEN (p_after_tx::text::numeric + 1)::text::xid8
    ELSE pg_catalog.pg_snapshot_xmin(p_snapshot)
  END
$$;

ALTER FUNCTION eventplane.snapshot_horizon(pg_snapshot, xid8) OWNER TO eventplane_owner;
REVOKE ALL ON FUNCTION eventplane.snapshot_horizon(pg_snapshot, xid8) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION eventplane.snapshot_horizon(pg_snapshot, xid8)
  TO eventplane_intent_writer, eventplane_fact_writer, eventplane_reader, eventplane_relay, eventplane_operator,
     eventplane_projector;

CREATE OR REPLACE FUNCTION eventplane.log_horizon(
  p_snapshot pg_snapshot, p_after_tx xid8 DEFAULT '0', p_after_position bigint DEFAULT 0)
RETURNS xid8 LANGUAGE plpgsql STABLE AS $$
DECLARE
  v_xmin xid8 := pg_catalog.pg_snapshot_xmin(p_snapshot);
  v_xmax xid8 := pg_catalog.pg_snapshot_xmax(p_snapshot);
  v_floor xid8 := eventplane.snapshot_horizon(p_snapshot, p_after_tx);
  v_db oid;
  v_first xid8;
BEGIN
  IF v_xmin = v_xmax OR NOT EXISTS (SELECT FROM pg_catalog.pg_snapshot_xip(p_snapshot)) THEN
    RETURN v_floor;
  END IF;
  -- Ordered and limited, not EXISTS (which drops both): an index probe whatever the plan cache's estimates.
  PERFORM FROM eventplane.events e
    WHERE e.tx_id >= v_floor AND (e.tx_id, e.global_position) > (p_after_tx, p_after_position)
    ORDER BY e.tx_id, e.global_position LIMIT 1;
  IF NOT FOUND THEN
    RETURN v_floor;
  END IF;
  SELECT d.oid INTO v_db FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database();
  PERFORM pg_catalog.pg_stat_clear_snapshot();
  SELECT min(x.xid) INTO v_first
    FROM pg_catalog.pg_snapshot_xip(p_snapshot) AS x(xid)
   WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_stat_get_activity(NULL) a
                      WHERE a.backend_xid = x.xid::xid AND a.datid <> v_db);
  RETURN greatest(least(v_xmax, v_first), v_floor);
END $$;
