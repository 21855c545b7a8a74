-- eventplane 0006: the relay's lease as a row only the relay role may lock.
-- Applied by the migration runner (store-pg migrate()); safe to re-apply.
--
-- Until now a relay held its name with a session advisory lock, on a key any
-- role could compute and take first (advisory locks have no privileges), which
-- kept every relay from ever becoming active. Now the lease is a row naming the
-- holding session (pid and backend start); a relay takes it only when that
-- session no longer exists, so a standby still takes over as soon as the
-- holder's session ends. Only eventplane_relay may write or lock these rows,
-- and a relay checkpoint is written only by the session the row names.

CREATE TABLE IF NOT EXISTS eventplane.relay_leases (
  name           text        PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9_-]{1,64}$'),
  holder_pid     int,
  holder_started timestamptz,
  acquired_at    timestamptz
);
ALTER TABLE eventplane.relay_leases OWNER TO eventplane_owner;
REVOKE ALL ON eventplane.relay_leases FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE ON eventplane.relay_leases TO eventplane_relay;
GRANT SELECT ON eventplane.relay_leases TO eventplane_operator;

-- Whether a backend is still the session it was: same pid and start time. A
-- role that may not see the other session's start time (another login role)
-- falls back to the pid alone, which never takes a live lease.
CREATE OR REPLACE FUNCTION eventplane.backend_alive(p_pid int, p_started timestamptz)
RETURNS boolean LANGUAGE sql STABLE AS $$
  SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity a
                  WHERE a.pid = p_pid AND (a.backend_start = p_started OR a.backend_start IS NULL))
$$;

-- Whether the calling session holds relay `p_name`'s lease.
CREATE OR REPLACE FUNCTION eventplane.holds_relay_lease(p_name text)
RETURNS boolean LANGUAGE sql STABLE AS $$
  SELECT EXISTS (SELECT 1 FROM eventplane.relay_leases l
                  WHERE l.name = p_name AND l.holder_pid = pg_catalog.pg_backend_pid()
                    AND l.holder_started = (SELECT a.backend_start FROM pg_catalog.pg_stat_activity a
                                             WHERE a.pid = pg_catalog.pg_backend_pid()))
$$;

-- Takes relay `p_name`'s lease for the calling session unless another live
-- session holds it. The row lock serializes takers; pg_stat_activity is read
-- fresh after it (it is otherwise cached for the transaction), so a taker that
-- waited sees the session that took the lease meanwhile as alive.
CREATE OR REPLACE FUNCTION eventplane.acquire_relay_lease(p_name text)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
  v_pid int;
  v_started timestamptz;
BEGIN
  INSERT INTO eventplane.relay_leases (name) VALUES (p_name) ON CONFLICT (name) DO NOTHING;
  SELECT l.holder_pid, l.holder_started INTO v_pid, v_started
    FROM eventplane.relay_leases l WHERE l.name = p_name FOR UPDATE;
  PERFORM pg_catalog.pg_stat_clear_snapshot();
  IF v_pid IS NOT NULL AND v_pid <> pg_catalog.pg_backend_pid() AND eventplane.backend_alive(v_pid, v_started) THEN
    RETURN false;
  END IF;
  UPDATE eventplane.relay_leases l
     SET holder_pid = pg_catalog.pg_backend_pid(),
         holder_started = (SELECT a.backend_start FROM pg_catalog.pg_stat_activity a
                            WHERE a.pid = pg_catalog.pg_backend_pid()),
         acquired_at = now()
   WHERE l.name = p_name;
  RETURN true;
END $$;

ALTER FUNCTION eventplane.backend_alive(int, timestamptz) OWNER TO eventplane_owner;
ALTER FUNCTION eventplane.holds_relay_lease(text) OWNER TO eventplane_owner;
ALTER FUNCTION eventplane.acquire_relay_lease(text) OWNER TO eventplane_owner;
REVOKE ALL ON FUNCTION eventplane.backend_alive(int, timestamptz), eventplane.holds_relay_lease(text),
  eventplane.acquire_relay_lease(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION eventplane.backend_alive(int, timestamptz) TO eventplane_relay, eventplane_operator;
GRANT EXECUTE ON FUNCTION eventplane.holds_relay_lease(text), eventplane.acquire_relay_lease(text)
  TO eventplane_relay;
