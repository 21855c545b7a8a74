-- eventplane 0021: the gap-safe horizon no longer stops at a transaction that
-- ended between the reading statement's snapshot and its look-up of the
-- sessions, when that transaction left no row in this log (issue 15; a
-- reader that ended short of events committed before it started).
-- Applied by the migration runner (store-pg migrate()); safe to re-apply.
--
-- Why: 0018's look-up passes an xid of the snapshot S only when a session of
-- another database still holds it when pg_stat_get_activity is read. An xid
-- of another database that ends in between (microseconds to milliseconds,
-- often on a busy cluster: every short transaction of every other database)
-- is found in no session and stopped the read, like one of this database.
-- Sound, never a skipped row, but the read returned nothing at or above that
-- xid: a reader that pages until an empty page (a projection's catch-up, an
-- export, `runner.start()`) ended short of events committed before it began
-- (seen in CI twice: a catch-up that ended at 82 of 85 events, a projection
-- runner that started having applied none of three).
--
-- The rule added. An xid of xip(S) that no session of another database holds
-- now may pass when it has ended and left no row this reader can see: its
-- status is committed or aborted (pg_xact_status, read from the commit log),
-- and in a snapshot taken after that (S'), the xid is final
-- (pg_visible_in_snapshot) and the log holds no row with its tx_id. A row of
-- a transaction that committed before S' is visible in S' (rows carry the
-- inserting top-level xid, 0018), so none means it wrote none; an aborted
-- transaction's rows are never visible. The status is checked first (cheap:
-- an xid still running stops the read without a second snapshot), and S'
-- must show it final too: the commit log says "committed" a moment before
-- the transaction leaves the list of running ones, and in that moment its
-- rows are not yet visible. Every other xid still stops the read: running,
-- prepared (in progress), or ended with rows (its rows are read by the next
-- statement, whose snapshot shows them, in order).
--
-- S' is a fresh snapshot because eventplane.ended_without_log_rows is
-- VOLATILE: PL/pgSQL takes a new snapshot for each statement of a VOLATILE
-- function in READ COMMITTED, also when called from a STABLE one. Under
-- REPEATABLE READ or SERIALIZABLE it gets the transaction's snapshot, in
-- which the xid is not final: the read stops there, the old rule. It reads
-- the log with its caller's row level security: a tenant's reader learns only
-- whether the xid wrote a row of its own tenant, the only rows its read
-- returns.
CREATE OR REPLACE FUNCTION eventplane.ended_without_log_rows(p_xid xid8)
RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  RETURN pg_catalog.pg_visible_in_snapshot(p_xid, pg_catalog.pg_current_snapshot())
     AND NOT EXISTS (SELECT FROM eventplane.events e WHERE e.tx_id = p_xid);
END $$;

ALTER FUNCTION eventplane.ended_without_log_rows(xid8) OWNER TO eventplane_owner;
REVOKE ALL ON FUNCTION eventplane.ended_without_log_rows(xid8) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION eventplane.ended_without_log_rows(xid8)
  TO eventplane_intent_writer, eventplane_fact_writer, eventplane_reader, eventplane_relay, eventplane_operator,
     eventplane_projector;

-- 0020's function (0018's with the floor after the checkpoint's ended
-- transaction) with the rule above: the candidates (xids of xip(S) held by no
-- session of another database) in order; the first that may not pass is the
-- horizon, never below the floor. Everything else as 0018 and 0020 say.
CREATE OR REPLACE FUNCTION eventplane.log_horizon(
  p_snapshot pg_snapshot, p_after_tx xid8 DEFAULT '0', p_after_position bigint DEFAULT 0)
RETURNS xid8 LANGUAGE plpgsql STABLE AS $$
DECLARE
  v_xmin xid8 := pg_catalog.pg_snapshot_xmin(p_snapshot);
  v_xmax xid8 := pg_catalog.pg_snapshot_xmax(p_snapshot);
  v_floor xid8 := eventplane.snapshot_horizon(p_snapshot, p_after_tx);
  v_db oid;
  v_xid xid8;
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
  FOR v_xid IN
    SELECT x.xid FROM pg_catalog.pg_snapshot_xip(p_snapshot) AS x(xid)
     WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_stat_get_activity(NULL) a
                        WHERE a.backend_xid = x.xid::xid AND a.datid <> v_db)
     ORDER BY x.xid
  LOOP
    IF pg_catalog.pg_xact_status(v_xid) IS DISTINCT FROM 'committed'
       AND pg_catalog.pg_xact_status(v_xid) IS DISTINCT FROM 'aborted' THEN
      RETURN greatest(least(v_xmax, v_xid), v_floor);
    END IF;
    IF NOT eventplane.ended_without_log_rows(v_xid) THEN
      RETURN greatest(least(v_xmax, v_xid), v_floor);
    END IF;
  END LOOP;
  RETURN v_xmax;
END $$;

ALTER FUNCTION eventplane.log_horizon(pg_snapshot, xid8, bigint) OWNER TO eventplane_owner;
REVOKE ALL ON FUNCTION eventplane.log_horizon(pg_snapshot, xid8, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION eventplane.log_horizon(pg_snapshot, xid8, bigint)
  TO eventplane_intent_writer, eventplane_fact_writer, eventplane_reader, eventplane_relay, eventplane_operator,
     eventplane_projector;
