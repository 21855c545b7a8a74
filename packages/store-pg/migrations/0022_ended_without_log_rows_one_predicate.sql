-- eventplane 0022: "ended, and left no row in this log" is one predicate,
-- eventplane.ended_without_log_rows, with its status check inside it.
-- Applied by the migration runner (store-pg migrate()); safe to re-apply.
--
-- Why: 0021 wrote the rule in two places. log_horizon checked
-- pg_xact_status (committed or aborted) before calling
-- ended_without_log_rows, and the statement behind `evtctl status` and the
-- relay's guard (store-pg open-transactions.ts) repeated that check beside
-- its call. A change to one (a new status, a different order) could leave the
-- other behind: the horizon would pass an xid that status still lists as
-- holding the log, or the other way round. Now the function is the whole
-- rule and both callers only call it.
--
-- The rule is 0021's, in the same order: the status first (an xid still
-- running or prepared, or one too old for the commit log, returns false at
-- once: it stops the read), then, in a snapshot S' taken after that (the
-- function is VOLATILE, so in READ COMMITTED each statement takes a fresh
-- one), the xid final in S' and no row of the log with its tx_id, read with
-- the caller's row level security. See 0021 for why each part is needed.
CREATE OR REPLACE FUNCTION eventplane.ended_without_log_rows(p_xid xid8)
RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  IF pg_catalog.pg_xact_status(p_xid) IS DISTINCT FROM 'committed'
     AND pg_catalog.pg_xact_status(p_xid) IS DISTINCT FROM 'aborted' THEN
    RETURN false;
  END IF;
  RETURN pg_catalog.pg_visible_in_snapshot(p_xid, pg_catalog.pg_current_snapshot())
     AND NOT EXISTS (SELECT FROM eventplane.events e WHERE e.tx_id = p_xid);
END $$;

-- 0021's log_horizon, its loop calling the one predicate: the candidates
-- (xids of xip(S) held by no session of another database) in order; the
-- first that has not ended without a row here is the horizon, never below
-- the floor. Everything else as 0018, 0020 and 0021 say.
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
    IF NOT eventplane.ended_without_log_rows(v_xid) THEN
      RETURN greatest(least(v_xmax, v_xid), v_floor);
    END IF;
  END LOOP;
  RETURN v_xmax;
END $$;
