-- eventplane 0018: the gap-safe read stops at the oldest transaction that can
-- still write into this log, not at the oldest of the whole cluster (issue 15).
-- Applied by the migration runner (store-pg migrate()); safe to re-apply.
--
-- Why: every gap-safe reader (the relay, readAll, the tenant reads, exports,
-- rebuilds, chain heads) returned only rows with tx_id < pg_snapshot_xmin of
-- its statement's snapshot: the oldest transaction running anywhere in the
-- cluster. One long transaction in another database (another application on
-- the same server, a psql session) held back delivery of every event.
--
-- The rule. S is the reading statement's snapshot (pg_current_snapshot(),
-- passed in by the caller, so it is the snapshot the scan reads with). An xid
-- below xmax(S) that is not in xip(S) had ended when S was taken: its rows are
-- visible in S, and no row with that tx_id can appear later. An xid in xip(S)
-- may still insert, unless it belongs to another database: a backend never
-- changes database, and every row of this log carries the top-level xid of
-- the transaction that inserted it (tx_id DEFAULT pg_current_xact_id(); the
-- append functions take it the same way), which is a backend of this
-- database. So the read may pass every xid of xip(S) that, read after S, is
-- the backend_xid of a session (pg_stat_get_activity) of another database
-- (datid known and not ours): a client backend, an autovacuum worker, a
-- logical replication worker alike. Every other xid of xip(S) stops the read:
-- one of this database, one that ended between S and the look-up, one of a
-- process without a database, and every prepared transaction (not a session;
-- pg_prepared_xact() knows its database, but this server runs with
-- max_prepared_transactions = 0, so that path could not be tested here: left
-- out, a prepared transaction holds the read back as before). The horizon is
-- the least of xmax(S) and those. A row with tx_id below it is final: it is
-- visible in S, and nothing can be committed below it later.
--
-- Why "read after S" matters: pg_stat_get_activity copies each backend's
-- status slot (pid, database) and then reads the xid of the process that
-- holds that slot at that moment. If a session exits in between and a new one
-- takes its slot, the pair mixes two sessions; the new session started after
-- the copy, so after S, and any xid it holds is at or above xmax(S): never in
-- xip(S). Hence the activity must be read after S, and afresh: PostgreSQL
-- keeps a transaction's first copy of the activity until the transaction ends
-- (a second read in the same transaction would be older than a later
-- statement's S), so the function drops it first (pg_stat_clear_snapshot(),
-- which also drops that transaction's cached cumulative statistics).
--
-- A snapshot taken during recovery (a hot standby) lists every running xid
-- as a subtransaction and none in xip: the horizon is then xmin(S), the old
-- rule. So is it when nothing runs (xmin = xmax).
--
-- Visibility: datid and backend_xid of every session are shown to every role
-- (PostgreSQL 15's pg_stat_get_activity: "values available to all callers";
-- query, state, backend type and the like need pg_read_all_stats), so this is
-- a SECURITY INVOKER function with no privilege of its own. Should a server
-- hide them, nothing is found and every xid stops the read: the old rule,
-- never a skipped row.
--
-- The look-up costs the backend 0.2-0.6 ms (pg_stat_get_activity builds a
-- row of every session: more sessions, more cost), 2-6x a caught-up read
-- (docs/benchmarks.md, 14:02 section). It can only change what a read
-- returns when a row at or above xmin(S) is visible after the reader's
-- checkpoint (p_after_tx, p_after_position): the function checks that first
-- (one probe of events_global_order_idx, in S: a STABLE function reads with
-- its caller's snapshot, and with its caller's row level security) and
-- returns xmin(S) without the look-up when there is none. xmin(S) is always
-- a sound horizon (the old rule); with no such row it returns the same rows.
-- With appends running concurrently such a row is often there (an append in
-- flight, older than one committed after it): a relay calling this on every
-- read took the look-up on ~50-70 % of its reads with the machine loaded
-- (~1 % quiet) and its backends used 1.7x the CPU per event at 1k ev/s
-- (174 against 103 us; docs/benchmarks.md, 14:17-14:56 section).
-- So the relay reads with xmin(S) itself and calls this only in a drain
-- that starts at least horizonLookupMs (50 ms) after the last such one, on
-- every page of it (bus-nats relay.ts); one-off readers call it on every
-- statement. Called as a bare predicate, the planner also runs it to
-- estimate the index condition of a custom plan (then twice per read, seen
-- in a bench): the cross-tenant read puts it in a scalar subquery (store-pg
-- read-all.ts), evaluated once when the scan starts.
--
-- STABLE, so the planner evaluates it once per scan (an index key of
-- events_global_order_idx), not per row; PL/pgSQL, so its plans stay cached
-- in the session.
CREATE OR REPLACE FUNCTION eventplane.log_horizon(
  p_snapshot pg_snapshot, p_after_tx xid8 DEFAULT '0', p_after_position bigint DEFAULT 0)
RETURNS xid8 LANGUAGE plpgsql STABLE AS $$
DECLARE
  v_xmin xid8 := pg_catalog.pg_snapshot_xmin(p_snapshot);
  v_xmax xid8 := pg_catalog.pg_snapshot_xmax(p_snapshot);
  v_db oid;
  v_first xid8;
BEGIN
  IF v_xmin = v_xmax OR NOT EXISTS (SELECT FROM pg_catalog.pg_snapshot_xip(p_snapshot)) THEN
    RETURN v_xmin;
  END IF;
  -- Ordered and limited, not EXISTS (which drops both): an index probe whatever the plan cache's estimates.
  PERFORM FROM eventplane.events e
    WHERE e.tx_id >= v_xmin AND (e.tx_id, e.global_position) > (p_after_tx, p_after_position)
    ORDER BY e.tx_id, e.global_position LIMIT 1;
  IF NOT FOUND THEN
    RETURN v_xmin;
  END IF;
  SELECT d.oid INTO v_db FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database();
  PERFORM pg_catalog.pg_stat_clear_snapshot();
  SELECT min(x.xid) INTO v_first
    FROM pg_catalog.pg_snapshot_xip(p_snapshot) AS x(xid)
   WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_stat_get_activity(NULL) a
                      WHERE a.backend_xid = x.xid::xid AND a.datid <> v_db);
  RETURN least(v_xmax, v_first);
END $$;

ALTER FUNCTION eventplane.log_horizon(pg_snapshot, xid8, bigint) OWNER TO eventplane_owner;
REVOKE ALL ON FUNCTION eventplane.log_horizon(pg_snapshot, xid8, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION eventplane.log_horizon(pg_snapshot, xid8, bigint)
  TO eventplane_intent_writer, eventplane_fact_writer, eventplane_reader, eventplane_relay, eventplane_operator,
     eventplane_projector;

-- Every gap-safe reader in SQL takes the horizon from log_horizon, with its
-- own statement's snapshot and its checkpoint: the tenant page and the
-- category read (as 0017, one predicate changed; inlined as before:
-- log_horizon is called once per scan) and a tenant's chain heads (as 0011,
-- one predicate changed, no checkpoint: a head is a point nothing can be
-- committed before later, the same promise). CREATE OR
-- REPLACE keeps names, arguments, owners and grants. The cross-tenant read
-- (store-pg src/sql/read-all.ts) and the status count (log-head.ts) call it
-- the same way.
CREATE OR REPLACE FUNCTION eventplane.read_all_for_tenant(
  p_tenant text, p_after_tx xid8, p_after_position bigint, p_limit int)
RETURNS SETOF eventplane.events LANGUAGE sql STABLE AS $$
  SELECT e.*
    FROM (SELECT set_config('eventplane.tenant', p_tenant, true) AS tenant) s,
    LATERAL (
      SELECT * FROM eventplane.events e
       WHERE e.tenant_id = s.tenant
         AND (e.tx_id, e.global_position) > (p_after_tx, p_after_position)
         AND e.tx_id < eventplane.log_horizon(pg_current_snapshot(), p_after_tx, p_after_position)
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
         AND e.tx_id < eventplane.log_horizon(pg_current_snapshot(), p_after_tx, p_after_position)
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
   WHERE e.tenant_id = p_tenant AND e.tx_id < eventplane.log_horizon(pg_current_snapshot())
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
