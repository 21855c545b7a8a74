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
