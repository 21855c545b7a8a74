-- eventplane 0003: projection checkpoints and reducer state, the cross-tenant
-- projector role, and the schema SQL projections write their own tables into.
-- Applied by the migration runner or by hand with `psql -v ON_ERROR_STOP=1 -f`;
-- safe to re-apply.

CREATE SCHEMA IF NOT EXISTS eventplane;

-- Cluster-wide role; parallel test databases may create it at the same moment.
DO $$
BEGIN
  BEGIN
    CREATE ROLE eventplane_projector LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
  EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
  END;
  -- A projector idle inside a transaction would hold back every gap-safe read.
  BEGIN
    ALTER ROLE eventplane_projector SET idle_in_transaction_session_timeout = '30s';
  EXCEPTION WHEN OTHERS THEN NULL;
  END;
END $$;

-- One row per projection: its version and the last event applied, written in
-- the same transaction as the output so a crash never applies an event twice
-- or skips one.
CREATE TABLE IF NOT EXISTS eventplane.projection_checkpoints (
  projection      text        PRIMARY KEY CHECK (projection ~ '^[A-Za-z0-9_-]{1,64}$'),
  version         int         NOT NULL CHECK (version >= 1),
  tx_id           xid8        NOT NULL,
  global_position bigint      NOT NULL,
  updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Reducer projections: one jsonb state per (projection, tenant, key).
CREATE TABLE IF NOT EXISTS eventplane.projection_state (
  projection text  NOT NULL,
  tenant_id  text  NOT NULL CHECK (tenant_id ~ '^[A-Za-z0-9_-]{1,64}$'),
  key        text  NOT NULL,
  state      jsonb NOT NULL,
  PRIMARY KEY (projection, tenant_id, key)
);
ALTER TABLE eventplane.projection_checkpoints OWNER TO eventplane_owner;
ALTER TABLE eventplane.projection_state OWNER TO eventplane_owner;

ALTER TABLE eventplane.projection_state ENABLE ROW LEVEL SECURITY;
ALTER TABLE eventplane.projection_state FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS projector_all ON eventplane.projection_state;
CREATE POLICY projector_all ON eventplane.projection_state FOR ALL TO eventplane_projector
  USING (true) WITH CHECK (true);
DROP POLICY IF EXISTS operator_read ON eventplane.projection_state;
CREATE POLICY operator_read ON eventplane.projection_state FOR SELECT TO eventplane_operator USING (true);
DROP POLICY IF EXISTS tenant_read ON eventplane.projection_state;
CREATE POLICY tenant_read ON eventplane.projection_state FOR SELECT TO eventplane_reader
  USING (tenant_id = current_setting('eventplane.tenant', true));

-- The projector reads every tenant's events (like the relay), never writes them.
DROP POLICY IF EXISTS projector_read ON eventplane.events;
CREATE POLICY projector_read ON eventplane.events FOR SELECT TO eventplane_projector USING (true);

REVOKE ALL ON eventplane.projection_checkpoints, eventplane.projection_state FROM PUBLIC;
GRANT USAGE ON SCHEMA eventplane TO eventplane_projector;
GRANT SELECT ON eventplane.events TO eventplane_projector;
GRANT SELECT, INSERT, UPDATE, DELETE ON eventplane.projection_checkpoints, eventplane.projection_state
  TO eventplane_projector;
GRANT SELECT ON eventplane.projection_checkpoints TO eventplane_operator;
GRANT SELECT ON eventplane.projection_state TO eventplane_reader, eventplane_operator;
GRANT EXECUTE ON FUNCTION eventplane.read_all_for_tenant(text, xid8, bigint, int) TO eventplane_projector;

-- SQL projections create, fill and drop their own tables here; each projection
-- grants its readers and sets its own row level security in its setup.
CREATE SCHEMA IF NOT EXISTS eventplane_views;
ALTER SCHEMA eventplane_views OWNER TO eventplane_owner;
REVOKE ALL ON SCHEMA eventplane_views FROM PUBLIC;
GRANT USAGE, CREATE ON SCHEMA eventplane_views TO eventplane_projector;
GRANT USAGE ON SCHEMA eventplane_views TO eventplane_reader, eventplane_operator;
