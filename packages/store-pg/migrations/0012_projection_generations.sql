-- eventplane 0012: safe replay. A projection's output comes in generations:
-- the live generation is named by its checkpoint row, and a rebuild writes a
-- new generation next to it (reducer states tagged with it), with its own
-- checkpoint in projection_rebuilds, then swaps it in with one transaction
-- that moves the live checkpoint and generation together. Readers see only
-- the live generation, so an interrupted rebuild never serves partial state;
-- the rebuild row says how far it got, and the next replay resumes from it.
-- Applied by the migration runner (store-pg migrate()); safe to re-apply.

ALTER TABLE eventplane.projection_checkpoints ADD COLUMN IF NOT EXISTS generation int NOT NULL DEFAULT 1;
ALTER TABLE eventplane.projection_state ADD COLUMN IF NOT EXISTS generation int NOT NULL DEFAULT 1;

DO $$
BEGIN
  IF NOT EXISTS (
    SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
     WHERE i.indrelid = 'eventplane.projection_state'::regclass AND i.indisprimary AND a.attname = 'generation'
  ) THEN
    ALTER TABLE eventplane.projection_state DROP CONSTRAINT projection_state_pkey;
    ALTER TABLE eventplane.projection_state ADD PRIMARY KEY (projection, generation, tenant_id, key);
  END IF;
END $$;

-- At most one rebuild per projection: the generation it writes, the version
-- building it, and its checkpoint (written with its output, like the live one).
CREATE TABLE IF NOT EXISTS eventplane.projection_rebuilds (
  projection      text        PRIMARY KEY CHECK (projection ~ '^[A-Za-z0-9_-]{1,64}$'),
  generation      int         NOT NULL CHECK (generation >= 1),
  version         int         NOT NULL CHECK (version >= 1),
  tx_id           xid8        NOT NULL,
  global_position bigint      NOT NULL,
  events          bigint      NOT NULL DEFAULT 0,
  started_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE eventplane.projection_rebuilds OWNER TO eventplane_owner;
REVOKE ALL ON eventplane.projection_rebuilds FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON eventplane.projection_rebuilds TO eventplane_projector;
GRANT SELECT ON eventplane.projection_rebuilds TO eventplane_operator;

-- The live generation of a projection (1 before its first checkpoint). SECURITY
-- DEFINER so the tenant reader, who may not read checkpoints, can be held to it.
CREATE OR REPLACE FUNCTION eventplane.projection_live_generation(p_projection text)
RETURNS int LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, eventplane AS $$
  SELECT coalesce((SELECT generation FROM eventplane.projection_checkpoints WHERE projection = p_projection), 1)
$$;

-- A rebuild in progress, for the notes of `state` and `status`: positions and
-- times only, no output.
CREATE OR REPLACE FUNCTION eventplane.projection_rebuild_progress(p_projection text)
RETURNS TABLE (generation int, version int, tx_id xid8, global_position bigint, events bigint,
               started_at timestamptz, updated_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, eventplane AS $$
  SELECT r.generation, r.version, r.tx_id, r.global_position, r.events, r.started_at, r.updated_at
    FROM eventplane.projection_rebuilds r WHERE r.projection = p_projection
$$;

ALTER FUNCTION eventplane.projection_live_generation(text) OWNER TO eventplane_owner;
ALTER FUNCTION eventplane.projection_rebuild_progress(text) OWNER TO eventplane_owner;
REVOKE ALL ON FUNCTION eventplane.projection_live_generation(text),
  eventplane.projection_rebuild_progress(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION eventplane.projection_live_generation(text),
  eventplane.projection_rebuild_progress(text) TO eventplane_reader, eventplane_operator, eventplane_projector;

-- Tenant readers and the operator see the live generation only; the projector
-- (which writes shadows) sees every generation and filters by it itself.
DROP POLICY IF EXISTS operator_read ON eventplane.projection_state;
CREATE POLICY operator_read ON eventplane.projection_state FOR SELECT TO eventplane_operator
  USING (generation = eventplane.projection_live_generation(projection));
DROP POLICY IF EXISTS tenant_read ON eventplane.projection_state;
CREATE POLICY tenant_read ON eventplane.projection_state FOR SELECT TO eventplane_reader
  USING (tenant_id = current_setting('eventplane.tenant', true)
         AND generation = eventplane.projection_live_generation(projection));

-- SQL projections: a rebuild creates its tables in a shadow schema of its own
-- (the projection's statements name their tables unqualified; the runtime sets
-- search_path), and the swap moves them into eventplane_views in the
-- transaction that moves the checkpoint. The schemas are the owner's; the
-- projector may create in them, and owns (and so may move) what it creates.
-- The owner creates the shadow schemas (through the function below).
DO $$
BEGIN
  EXECUTE format('GRANT CREATE ON DATABASE %I TO eventplane_owner', current_database());
END $$;

-- Creates (when missing) the shadow schema of one rebuild generation; returns its name.
CREATE OR REPLACE FUNCTION eventplane.ensure_projection_shadow(p_projection text, p_generation int)
RETURNS text LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, eventplane AS $$
DECLARE
  v_schema text := 'eventplane_shadow_' || left(md5(p_projection), 16) || '_' || p_generation;
BEGIN
  IF p_projection !~ '^[A-Za-z0-9_-]{1,64}$' OR p_generation < 1 THEN
    RAISE EXCEPTION 'invalid projection or generation' USING ERRCODE = '22023';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = v_schema) THEN
    EXECUTE format('CREATE SCHEMA %I', v_schema);
    EXECUTE format('REVOKE ALL ON SCHEMA %I FROM PUBLIC', v_schema);
    EXECUTE format('GRANT USAGE, CREATE ON SCHEMA %I TO eventplane_projector', v_schema);
  END IF;
  RETURN v_schema;
END $$;

-- Drops the shadow schemas of `p_projection` that no rebuild writes any more (a
-- discarded rebuild's, with its tables; an empty one after a swap): all but the
-- rebuild in progress's. Returns how many went.
CREATE OR REPLACE FUNCTION eventplane.drop_stale_projection_shadows(p_projection text)
RETURNS int LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, eventplane AS $$
DECLARE
  v_keep text;
  v_schema text;
  v_dropped int := 0;
BEGIN
  SELECT 'eventplane_shadow_' || left(md5(p_projection), 16) || '_' || r.generation INTO v_keep
    FROM eventplane.projection_rebuilds r WHERE r.projection = p_projection;
  FOR v_schema IN
    SELECT nspname FROM pg_namespace
     WHERE nspname LIKE 'eventplane_shadow_' || left(md5(p_projection), 16) || '\_%'
       AND nspname IS DISTINCT FROM v_keep
  LOOP
    EXECUTE format('DROP SCHEMA IF EXISTS %I CASCADE', v_schema);
    v_dropped := v_dropped + 1;
  END LOOP;
  RETURN v_dropped;
END $$;

ALTER FUNCTION eventplane.ensure_projection_shadow(text, int) OWNER TO eventplane_owner;
ALTER FUNCTION eventplane.drop_stale_projection_shadows(text) OWNER TO eventplane_owner;
REVOKE ALL ON FUNCTION eventplane.ensure_projection_shadow(text, int), eventplane.drop_stale_projection_shadows(text)
  FROM PUBLIC;
GRANT EXECUTE ON FUNCTION eventplane.ensure_projection_shadow(text, int), eventplane.drop_stale_projection_shadows(text)
  TO eventplane_projector;
