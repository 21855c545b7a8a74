-- eventplane 0015: a one-event append with less server work per call
-- (issue 15). Applied by the migration runner (store-pg migrate()); safe to
-- re-apply. Nothing stored changes: the canonical form, the hashes, the
-- checks, the roles and the policies are 0014's.
--
-- Profiled first (perf of the backend under a loop of one-event appends,
-- docs/benchmarks.md 2026-11-30 "one-event append, server CPU"):
--
-- 1. About a tenth of the backend's CPU went to parsing, analysing and
--    planning chain_instant's body on every call: it was declared IMMUTABLE,
--    but to_char(timestamp, text) is STABLE, so the planner would not inline
--    it, and a SQL function not inlined runs through fmgr_sql, which parses
--    its body again in every transaction (from PL/pgSQL and from the
--    trigger's chain_canonical_fields alike). STABLE, as what it calls: now
--    inlined. Its result does not depend on any setting (a fixed zone, a
--    format without locale-dependent fields), so STABLE is no weaker a
--    promise where it is used.
-- 2. A one-event append hashes its event in one expression (0014's loop
--    around it, with its run-keeping of occurred_at and caused_by, is for
--    batches), inserts one row of VALUES and takes its results from
--    RETURNING, instead of ROWS FROM over ten unnests, a CTE and two
--    array_aggs (and three assignments after): less executor start-up and
--    fewer PL/pgSQL expressions to initialise per call. Batches keep 0014's
--    loop and INSERT.
--
-- Measured and left as they were: plan_cache_mode (the statements already run
-- cached generic plans: force_generic_plan changed nothing, force_custom_plan
-- cost ~250 us more per call), enable_sort (its SET clause costs nothing
-- measurable), the key columns' collation (bttextcmp/varstr_cmp ~0.3% of the
-- backend's CPU here), PERFORM set_config as an assignment (no change).

CREATE OR REPLACE FUNCTION eventplane.chain_instant(p_at timestamptz)
RETURNS text LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT pg_catalog.to_char(p_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
$$;
ALTER FUNCTION eventplane.chain_instant(timestamptz) OWNER TO eventplane_owner;

-- One body for the three entry points, as in 0014 (format(): %% is a literal
-- %, %L the kinds each allows), with a one-event path beside the batch's. The
-- lines from "the chain" to "the chain's end" are the whole of the chain
-- (pnpm bench:chain cuts them out to measure the append without it: v_hash
-- and the hash array stay NULL).
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
  -- the canonical text of the values its row will store. One event: one
  -- expression, no loop. Ends at "the chain's end" (pnpm bench:chain).
  v_hash := coalesce(v_prev, '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea);
  IF v_n = 1 THEN
    v_hash := sha256(v_hash || convert_to(eventplane.chain_canonical_text((p_data -> 0)::text, p_kinds[1],
      p_types[1], p_category, p_event_ids[1]::text, to_json(p_caused_by[1])::text, p_stream_id, p_tenant,
      eventplane.chain_instant(p_occurred_at[1]), coalesce('"' || p_causation_ids[1]::text || '"', 'null'),
      p_correlation_ids[1]::text, p_schema_versions[1]::text, (v_current + 1)::text), 'UTF8'));
  ELSE
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
  END IF;
  -- the chain's end.

  -- A concurrent append that takes one of these versions (or event ids)
  -- first makes this insert wait for its commit and fail with 23505 on
  -- events_stream_version_key (events_event_id_key); the statement wrote
  -- nothing, and the caller appends again (store-pg event-store.ts).
  --
  -- One event: one row of VALUES, its results in RETURNING (tx_id and
  -- recorded_at are the row's defaults, pg_current_xact_id() and now(), as
  -- the batch's below): no unnest, CTE or aggregate to start per call.
  IF v_n = 1 THEN
    INSERT INTO eventplane.events AS ev (event_id, tenant_id, kind, category, stream_id, stream_version, type,
                                         schema_version, data, correlation_id, causation_id, caused_by, occurred_at,
                                         hash)
    VALUES (p_event_ids[1], p_tenant,
            CASE WHEN p_kinds[1] = ANY (%L::text[]) THEN p_kinds[1] ELSE eventplane.refuse_kind(p_kinds[1]) END,
            p_category, p_stream_id, v_current + 1, p_types[1], p_schema_versions[1], p_data -> 0,
            p_correlation_ids[1], p_causation_ids[1], p_caused_by[1], p_occurred_at[1], v_hash)
    RETURNING ARRAY[ev.stream_version], ARRAY[ev.global_position], ev.tx_id, ev.recorded_at, false
      INTO stream_versions, global_positions, tx_id, recorded_at, replayed;
    RETURN;
  END IF;

  -- A batch: the rows enter in batch order, so positions grow with versions.
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
$create$, entry.name, entry.kinds, entry.kinds);
  END LOOP;
END $do$;
