-- eventplane 0014: the batch's chain without a PL/pgSQL call per event, and
-- one probe of the stored ids (issue 17). Applied by the migration runner
-- (store-pg migrate()); safe to re-apply. The canonical form and the hashes do
-- not change (docs/architecture.md "The hash chain"): every stored hash still
-- verifies.
--
-- Profiled first (docs/benchmarks.md, 2026-11-30 "the chain without a call per
-- event"): in 0013 the batch's chain was a window aggregate whose step is a
-- PL/pgSQL function (one call per event, with the window's sort and tuple
-- store around it), and the canonical text formatted every event's
-- occurred_at with to_char and its caused_by with to_json, though the events
-- of a batch mostly share both. Now:
--
-- 1. The append function folds the batch itself, in one loop over the
--    argument arrays before its INSERT (PL/pgSQL keeps array arguments
--    expanded, so element i is a lookup): no function call per event, no
--    window, no sort. The hashes go into the INSERT as one more array, next to
--    the fields they were computed from, so the row stores exactly the values
--    that were hashed.
-- 2. occurred_at and caused_by are formatted once per run of equal values
--    (the previous event's text is kept while the value does not change).
-- 3. The layout of the canonical text is one SQL function of the formatted
--    values (chain_canonical_text); chain_canonical_fields (the trigger's and
--    chain_canonical's) formats and calls it, the append formats its own way
--    and calls it too. Both inline.
-- 4. The stored ids are probed once: one join of the batch with the stored
--    events gives how many are stored, how many identically in this stream,
--    the first that conflicts, and what an identical retry returns (0013 ran
--    an existence probe, the identical-retry join, then the result's or the
--    conflict's lookup: three).

-- The text of occurred_at in the canonical form: UTC, six fraction digits.
CREATE OR REPLACE FUNCTION eventplane.chain_instant(p_at timestamptz)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT pg_catalog.to_char(p_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
$$;

-- The canonical text from the fields already written as their JSON text
-- (names as they are, caused_by and causation_id as JSON values, numbers as
-- digits): the one definition of its layout, jsonb's key order.
CREATE OR REPLACE FUNCTION eventplane.chain_canonical_text(
  p_data text, p_kind text, p_type text, p_category text, p_event_id text, p_caused_by_json text, p_stream_id text,
  p_tenant text, p_occurred_at text, p_causation_json text, p_correlation_id text, p_schema_version text,
  p_stream_version text)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT '{"data": ' || p_data
      || ', "kind": "' || p_kind
      || '", "type": "' || p_type
      || '", "category": "' || p_category
      || '", "event_id": "' || p_event_id
      || '", "caused_by": ' || p_caused_by_json
      || ', "stream_id": "' || p_stream_id
      || '", "tenant_id": "' || p_tenant
      || '", "occurred_at": "' || p_occurred_at
      || '", "causation_id": ' || p_causation_json
      || ', "correlation_id": "' || p_correlation_id
      || '", "schema_version": ' || p_schema_version
      || ', "stream_version": ' || p_stream_version || '}'
$$;

-- 0013's signature and text, its layout now chain_canonical_text's.
CREATE OR REPLACE FUNCTION eventplane.chain_canonical_fields(
  p_event_id uuid, p_tenant text, p_kind text, p_category text, p_stream_id text, p_stream_version bigint,
  p_type text, p_schema_version smallint, p_data jsonb, p_correlation_id uuid, p_causation_id uuid,
  p_caused_by text, p_occurred_at timestamptz)
RETURNS text LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT eventplane.chain_canonical_text(p_data::text, p_kind, p_type, p_category, p_event_id::text,
           pg_catalog.to_json(p_caused_by)::text, p_stream_id, p_tenant, eventplane.chain_instant(p_occurred_at),
           coalesce('"' || p_causation_id::text || '"', 'null'), p_correlation_id::text, p_schema_version::text,
           p_stream_version::text)
$$;

-- The batch against the stored events, in one join by event id: how many of
-- its ids are stored (visible: this tenant's), how many of them identically
-- in this stream, the first (in batch order) stored otherwise, or else the
-- first stored; and, for an identical retry, what the first append returned
-- (the events in batch order, the transaction and time of the last).
CREATE OR REPLACE FUNCTION eventplane.stored_batch(
  p_tenant text, p_category text, p_stream_id text, p_event_ids uuid[], p_kinds text[], p_types text[],
  p_schema_versions smallint[], p_data jsonb, p_correlation_ids uuid[], p_causation_ids uuid[],
  p_caused_by text[], p_occurred_at timestamptz[],
  OUT stored int, OUT identical int, OUT conflict uuid,
  OUT stream_versions bigint[], OUT global_positions bigint[], OUT tx_id xid8, OUT recorded_at timestamptz)
LANGUAGE sql STABLE AS $$
  SELECT count(*)::int, (count(*) FILTER (WHERE s.same))::int,
         coalesce((array_agg(s.event_id ORDER BY s.ord) FILTER (WHERE NOT s.same))[1],
                  (array_agg(s.event_id ORDER BY s.ord))[1]),
         array_agg(s.stream_version ORDER BY s.ord), array_agg(s.global_position ORDER BY s.ord),
         (array_agg(s.tx_id ORDER BY s.ord DESC))[1], (array_agg(s.recorded_at ORDER BY s.ord DESC))[1]
    FROM (SELECT x.ord, x.event_id, ev.stream_version, ev.global_position, ev.tx_id, ev.recorded_at,
                 (ev.tenant_id = p_tenant AND ev.category = p_category AND ev.stream_id = p_stream_id
                  AND ev.kind = x.kind AND ev.type = x.type AND ev.schema_version = x.schema_version
                  AND ev.data = x.data AND ev.correlation_id = x.correlation_id
                  AND ev.causation_id IS NOT DISTINCT FROM x.causation_id
                  AND ev.caused_by = x.caused_by AND ev.occurred_at = x.occurred_at) IS TRUE AS same
            FROM ROWS FROM (unnest(p_event_ids), unnest(p_kinds), unnest(p_types), unnest(p_schema_versions),
                            jsonb_array_elements(p_data), unnest(p_correlation_ids), unnest(p_causation_ids),
                            unnest(p_caused_by), unnest(p_occurred_at))
                 WITH ORDINALITY AS x(event_id, kind, type, schema_version, data, correlation_id, causation_id,
                                      caused_by, occurred_at, ord)
            JOIN eventplane.events ev ON ev.event_id = x.event_id) s
$$;

DROP FUNCTION IF EXISTS eventplane.is_identical_retry(text, text, text, uuid[], text[], text[], smallint[], jsonb,
  uuid[], uuid[], text[], timestamptz[]);
DROP FUNCTION IF EXISTS eventplane.stored_result(uuid[]);
-- 0013's window aggregate and its step: nothing calls them any more.
DROP AGGREGATE IF EXISTS eventplane.chain_fold(bytea, text);
DROP FUNCTION IF EXISTS eventplane.chain_fold_step(bytea, bytea, text);

-- One body for the three entry points, as in 0013 (format(): %% is a literal
-- %, %L the kinds each allows). The loop between the lines "the chain" and
-- "END LOOP" is the whole of the chain (pnpm bench:chain cuts it out to
-- measure the append without it: the hash array stays NULL, and ROWS FROM
-- pads its column with NULLs).
DO $do$
DECLARE
  entry record;
BEGIN
  FOR entry IN SELECT * FROM (VALUES
      ('append_intents', ARRAY['intent']),
      ('append_facts', ARRAY['fact', 'internal']),
      ('append_to_stream', ARRAY['intent', 'fact', 'internal'])) AS e(name, kinds) LOOP
    EXECUTE format($create$
CREATE OR REPLACE FUNCTION eventplane.%I(
  p_tenant text, p_category text, p_stream_id text, p_expected bigint,
  p_event_ids uuid[], p_kinds text[], p_types text[], p_schema_versions smallint[], p_data jsonb,
  p_correlation_ids uuid[], p_causation_ids uuid[], p_caused_by text[], p_occurred_at timestamptz[],
  p_probe_ids boolean,
  OUT stream_versions bigint[], OUT global_positions bigint[], OUT tx_id xid8, OUT recorded_at timestamptz,
  OUT replayed boolean)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET enable_sort = off AS $body$
#variable_conflict use_column
DECLARE
  v_n int := cardinality(p_event_ids);
  v_current bigint;
  v_prev bytea;
  v_stored record;
  v_hashes bytea[];
  v_hash bytea;
  v_at timestamptz;
  v_at_text text;
  v_by text;
  v_by_json text;
BEGIN
  -- The rules the table's CHECKs had (0010), once per append; SQLSTATE 23514 as they raised.
  IF NOT (p_tenant ~ '^[A-Za-z0-9_-]+$' AND length(p_tenant) <= 64
          AND p_category ~ '^[A-Za-z0-9_-]+$' AND length(p_category) <= 64
          AND p_stream_id ~ '^[A-Za-z0-9_:-]+$' AND length(p_stream_id) <= 128) THEN
    IF NOT coalesce(p_tenant ~ '^[A-Za-z0-9_-]+$' AND length(p_tenant) <= 64, false) THEN
      RAISE EXCEPTION 'invalid tenant id' USING ERRCODE = '23514', CONSTRAINT = 'events_tenant_id_check';
    END IF;
    IF NOT coalesce(p_category ~ '^[A-Za-z0-9_-]+$' AND length(p_category) <= 64, false) THEN
      RAISE EXCEPTION 'invalid category' USING ERRCODE = '23514', CONSTRAINT = 'events_category_check';
    END IF;
    RAISE EXCEPTION 'invalid stream id' USING ERRCODE = '23514', CONSTRAINT = 'events_stream_id_check';
  END IF;
  IF NOT coalesce(v_n >= 1 AND cardinality(p_kinds) = v_n AND cardinality(p_types) = v_n
                  AND cardinality(p_schema_versions) = v_n AND jsonb_array_length(p_data) = v_n
                  AND cardinality(p_correlation_ids) = v_n AND cardinality(p_causation_ids) = v_n
                  AND cardinality(p_caused_by) = v_n AND cardinality(p_occurred_at) = v_n, false) THEN
    RAISE EXCEPTION 'an append takes one or more events, every field array of the same length'
      USING ERRCODE = '22023';
  END IF;
  PERFORM set_config('eventplane.tenant', p_tenant, true);
  -- The stream's last version and hash: the version check and the chain's start, one probe.
  SELECT ev.stream_version, ev.hash INTO v_current, v_prev FROM eventplane.events ev
   WHERE ev.tenant_id = p_tenant AND ev.category = p_category AND ev.stream_id = p_stream_id
   ORDER BY ev.stream_version DESC LIMIT 1;
  v_current := coalesce(v_current, 0);

  -- An exact expectation the stream has passed (an identical retry of it
  -- included), or a call after an insert failed on a stored event id: one
  -- probe of the ids classifies. An id stored in another tenant is not
  -- visible here: the insert below fails on it again.
  IF (p_expected >= 0 AND v_current <> p_expected) OR p_probe_ids THEN
    SELECT * INTO v_stored FROM eventplane.stored_batch(p_tenant, p_category, p_stream_id, p_event_ids, p_kinds,
      p_types, p_schema_versions, p_data, p_correlation_ids, p_causation_ids, p_caused_by, p_occurred_at);
    IF v_stored.identical = v_n THEN
      stream_versions := v_stored.stream_versions;
      global_positions := v_stored.global_positions;
      tx_id := v_stored.tx_id;
      recorded_at := v_stored.recorded_at;
      replayed := true;
      RETURN;
    END IF;
    IF p_expected >= 0 AND v_current <> p_expected THEN
      RAISE EXCEPTION 'stream is at version %%, expected %%', v_current, p_expected
        USING ERRCODE = 'EPWEV', DETAIL = v_current::text;
    END IF;
    IF v_stored.stored > 0 THEN
      RAISE EXCEPTION 'event id %% is already stored with different content', v_stored.conflict
        USING ERRCODE = 'EPIDC', DETAIL = v_stored.conflict::text;
    END IF;
  END IF;

  -- the chain: each event's hash from the one before, in version order, over
  -- the canonical text of the values its row will store.
  v_hash := coalesce(v_prev, '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea);
  FOR i IN 1 .. v_n LOOP
    IF p_occurred_at[i] IS DISTINCT FROM v_at THEN
      v_at := p_occurred_at[i];
      v_at_text := eventplane.chain_instant(v_at);
    END IF;
    IF p_caused_by[i] IS DISTINCT FROM v_by THEN
      v_by := p_caused_by[i];
      v_by_json := to_json(v_by)::text;
    END IF;
    v_hash := sha256(v_hash || convert_to(eventplane.chain_canonical_text((p_data -> (i - 1))::text, p_kinds[i],
      p_types[i], p_category, p_event_ids[i]::text, v_by_json, p_stream_id, p_tenant, v_at_text,
      coalesce('"' || p_causation_ids[i]::text || '"', 'null'), p_correlation_ids[i]::text,
      p_schema_versions[i]::text, (v_current + i)::text), 'UTF8'));
    v_hashes[i] := v_hash;
  END LOOP;

  -- A concurrent append that takes one of these versions (or event ids)
  -- first makes this insert wait for its commit and fail with 23505 on
  -- events_stream_version_key (events_event_id_key); the statement wrote
  -- nothing, and the caller appends again (store-pg event-store.ts). The
  -- rows enter in batch order, so positions grow with versions.
  WITH ins AS (
    INSERT INTO eventplane.events AS ev (event_id, tenant_id, kind, category, stream_id, stream_version, type,
                                         schema_version, data, correlation_id, causation_id, caused_by, occurred_at,
                                         hash)
    SELECT x.event_id, p_tenant,
           CASE WHEN x.kind = ANY (%L::text[]) THEN x.kind ELSE eventplane.refuse_kind(x.kind) END,
           p_category, p_stream_id, v_current + x.ord, x.type,
           x.schema_version, x.data, x.correlation_id, x.causation_id, x.caused_by, x.occurred_at, x.hash
      FROM ROWS FROM (unnest(p_event_ids), unnest(p_kinds), unnest(p_types), unnest(p_schema_versions),
                      jsonb_array_elements(p_data), unnest(p_correlation_ids), unnest(p_causation_ids),
                      unnest(p_caused_by), unnest(p_occurred_at), unnest(v_hashes))
           WITH ORDINALITY AS x(event_id, kind, type, schema_version, data, correlation_id, causation_id,
                                caused_by, occurred_at, hash, ord)
    RETURNING ev.stream_version, ev.global_position
  )
  SELECT array_agg(ins.stream_version ORDER BY ins.stream_version),
         array_agg(ins.global_position ORDER BY ins.stream_version)
    INTO stream_versions, global_positions FROM ins;
  tx_id := pg_current_xact_id();
  recorded_at := now();
  replayed := false;
END $body$
$create$, entry.name, entry.kinds);
  END LOOP;
END $do$;

ALTER FUNCTION eventplane.chain_instant(timestamptz) OWNER TO eventplane_owner;
ALTER FUNCTION eventplane.chain_canonical_text(text, text, text, text, text, text, text, text, text, text, text, text,
  text) OWNER TO eventplane_owner;
ALTER FUNCTION eventplane.stored_batch(text, text, text, uuid[], text[], text[], smallint[], jsonb, uuid[], uuid[],
  text[], timestamptz[]) OWNER TO eventplane_owner;
-- chain_instant and chain_canonical_text stay executable by everyone, like
-- the other chain functions: pure functions of their arguments (and the
-- planner inlines only what the caller may execute).
REVOKE ALL ON FUNCTION eventplane.stored_batch(text, text, text, uuid[], text[], text[], smallint[], jsonb, uuid[],
  uuid[], text[], timestamptz[]) FROM PUBLIC;
