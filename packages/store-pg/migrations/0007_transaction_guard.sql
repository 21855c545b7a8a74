-- eventplane 0007: seeing and ending transactions that hold back the gap-safe
-- read. Applied by the migration runner (store-pg migrate()); safe to re-apply.
--
-- The gap-safe read returns nothing committed after the oldest transaction
-- that still holds an xid, in the whole cluster. Any session may switch off
-- its idle_in_transaction_session_timeout, take an xid (pg_current_xact_id()
-- is enough) and sit. eventplane_guard (NOLOGIN) may read every session's
-- activity and signal non-superuser backends; it owns two SECURITY DEFINER
-- functions, the only way to use that power: one lists the xid holders (pid,
-- database, role, age; never query text), one terminates those in this
-- database older than a bound. The relay calls them (its guard).

-- Roles are cluster-wide; parallel migrations of several databases may create
-- and grant at the same moment, so a lost race is not an error.
DO $$
DECLARE r text;
BEGIN
  BEGIN
    CREATE ROLE eventplane_guard NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
  EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
  END;
  FOREACH r IN ARRAY ARRAY['pg_signal_backend', 'pg_read_all_stats'] LOOP
    IF NOT pg_has_role('eventplane_guard', r, 'MEMBER') THEN
      BEGIN
        EXECUTE format('GRANT %I TO eventplane_guard', r);
      EXCEPTION WHEN OTHERS THEN
        IF NOT pg_has_role('eventplane_guard', r, 'MEMBER') THEN
          RAISE;
        END IF;
      END;
    END IF;
  END LOOP;
END $$;

-- Every client transaction holding an xid, in any database, oldest first (no query text).
CREATE OR REPLACE FUNCTION eventplane.open_transactions()
RETURNS TABLE (pid int, database text, role text, application text, backend_xid text, xact_start timestamptz,
               age_ms bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT a.pid, a.datname::text, a.usename::text, a.application_name, a.backend_xid::text, a.xact_start,
         (extract(epoch FROM clock_timestamp() - a.xact_start) * 1000)::bigint
    FROM pg_stat_activity a
   WHERE a.backend_xid IS NOT NULL AND a.backend_type = 'client backend' AND a.pid <> pg_backend_pid()
   ORDER BY a.xact_start, a.pid
$$;

-- Terminates every non-superuser client backend of this database whose
-- transaction holds an xid and began more than p_older_than ago (at least one
-- second, so no append in flight is mistaken for a stuck one). Returns them.
CREATE OR REPLACE FUNCTION eventplane.terminate_stuck_transactions(p_older_than interval)
RETURNS TABLE (pid int, role text, backend_xid text, age_ms bigint, terminated boolean)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF p_older_than IS NULL OR p_older_than < interval '1 second' THEN
    RAISE EXCEPTION 'the bound must be at least one second, got %', p_older_than USING ERRCODE = '22023';
  END IF;
  RETURN QUERY
    SELECT a.pid, a.usename::text, a.backend_xid::text,
           (extract(epoch FROM clock_timestamp() - a.xact_start) * 1000)::bigint,
           pg_terminate_backend(a.pid)
      FROM pg_stat_activity a
      JOIN pg_roles r ON r.oid = a.usesysid
     WHERE a.backend_xid IS NOT NULL AND a.backend_type = 'client backend' AND a.pid <> pg_backend_pid()
       AND a.datname = current_database() AND NOT r.rolsuper
       AND a.xact_start < clock_timestamp() - p_older_than;
END $$;

ALTER FUNCTION eventplane.open_transactions() OWNER TO eventplane_guard;
ALTER FUNCTION eventplane.terminate_stuck_transactions(interval) OWNER TO eventplane_guard;
REVOKE ALL ON FUNCTION eventplane.open_transactions(), eventplane.terminate_stuck_transactions(interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION eventplane.open_transactions() TO eventplane_relay, eventplane_operator;
GRANT EXECUTE ON FUNCTION eventplane.terminate_stuck_transactions(interval) TO eventplane_relay;
