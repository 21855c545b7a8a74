-- A prototype, NOT a migration (issue 15, docs/benchmarks/journal-2026-11-30-am.md
-- "one event through scalar entry points"): one-event entry points with
-- scalar parameters beside the array ones. `scripts/bench/append-cpu.ts
-- --paths` applies it to its scratch database and compares it with the array
-- entry point, interleaved on one connection. Not landed: it saved 4-6 % of
-- the total CPU of a one-event append in those runs, under the 8 % that
-- would pay for a second signature of each entry point (grants, role matrix,
-- two paths to keep identical). Kept so the measurement can be repeated.
--
-- What it changes against the array entry points' one-event path (0015):
-- the event's fields as scalars, not nine one-element arrays (no array
-- serialising on the client, no array_in per array on the server, no
-- cardinality checks, no [1] / -> 0 per use); and the result as one composite
-- value called in the select list (`select f(...)::text`: no function scan
-- and tuple store to start per call, one column for the client instead of
-- five), recorded_at formatted here as the ISO instant the store returns, so
-- no field of the composite's text is quoted by record_out.
--
-- Same promises as the array entry points, one event at a time: the name
-- checks (23514 with the same constraint names), the tenant set for this
-- transaction, the version check (EPWEV with the stream's version as DETAIL),
-- the stored-id probe when asked or when an exact expectation fails
-- (stored_batch of a one-element batch: the identical retry returns what the
-- first append returned, replayed = true; other content: EPIDC), the kinds
-- each allows (42501 from refuse_kind), the hash from the stream's last one
-- over chain_canonical_text, SECURITY DEFINER owned by eventplane_owner with
-- the same search_path and enable_sort, and EXECUTE for the same roles.

DO $do$
DECLARE
  entry record;
BEGIN
  FOR entry IN SELECT * FROM (VALUES
      ('append_one_intent', ARRAY['intent']),
      ('append_one_fact', ARRAY['fact', 'internal']),
      ('append_one_to_stream', ARRAY['intent', 'fact', 'internal'])) AS e(name, kinds) LOOP
    EXECUTE format($create$
CREATE OR REPLACE FUNCTION eventplane.%I(
  p_tenant text, p_category text, p_stream_id text, p_expected bigint,
  p_event_id uuid, p_kind text, p_type text, p_schema_version smallint, p_data jsonb,
  p_correlation_id uuid, p_causation_id uuid, p_caused_by text, p_occurred_at timestamptz,
  p_probe_ids boolean,
  OUT stream_version bigint, OUT global_position bigint, OUT tx_id xid8, OUT recorded_at text,
  OUT replayed boolean)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET enable_sort = off AS $body$
#variable_conflict use_column
DECLARE
  v_current bigint;
  v_prev bytea;
  v_stored record;
  v_hash bytea;
BEGIN
  -- The rules the table's CHECKs had (0010), as the array entry points check them.
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
  PERFORM set_config('eventplane.tenant', p_tenant, true);
  SELECT ev.stream_version, ev.hash INTO v_current, v_prev FROM eventplane.events ev
   WHERE ev.tenant_id = p_tenant AND ev.category = p_category AND ev.stream_id = p_stream_id
   ORDER BY ev.stream_version DESC LIMIT 1;
  v_current := coalesce(v_current, 0);

  -- As the array entry points: an exact expectation the stream has passed,
  -- or a call after the insert failed on a stored event id, probes the id.
  IF (p_expected >= 0 AND v_current <> p_expected) OR p_probe_ids THEN
    SELECT * INTO v_stored FROM eventplane.stored_batch(p_tenant, p_category, p_stream_id, ARRAY[p_event_id],
      ARRAY[p_kind], ARRAY[p_type], ARRAY[p_schema_version], jsonb_build_array(p_data), ARRAY[p_correlation_id],
      ARRAY[p_causation_id], ARRAY[p_caused_by], ARRAY[p_occurred_at]);
    IF v_stored.identical = 1 THEN
      stream_version := v_stored.stream_versions[1];
      global_position := v_stored.global_positions[1];
      tx_id := v_stored.tx_id;
      recorded_at := to_char(v_stored.recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"');
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

  -- the chain: the event's hash from the stream's last one, over the
  -- canonical text of the values its row will store (as 0015's one-event
  -- path). Ends at "the chain's end" (pnpm bench:chain).
  v_hash := sha256(coalesce(v_prev, '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea)
    || convert_to(eventplane.chain_canonical_text(p_data::text, p_kind, p_type, p_category, p_event_id::text,
      to_json(p_caused_by)::text, p_stream_id, p_tenant, eventplane.chain_instant(p_occurred_at),
      coalesce('"' || p_causation_id::text || '"', 'null'), p_correlation_id::text, p_schema_version::text,
      (v_current + 1)::text), 'UTF8'));
  -- the chain's end.

  -- A concurrent append that takes this version (or event id) first makes
  -- this insert wait for its commit and fail with 23505, as the array entry
  -- points' (store-pg event-store.ts appends again).
  INSERT INTO eventplane.events AS ev (event_id, tenant_id, kind, category, stream_id, stream_version, type,
                                       schema_version, data, correlation_id, causation_id, caused_by, occurred_at,
                                       hash)
  VALUES (p_event_id, p_tenant,
          CASE WHEN p_kind = ANY (%L::text[]) THEN p_kind ELSE eventplane.refuse_kind(p_kind) END,
          p_category, p_stream_id, v_current + 1, p_type, p_schema_version, p_data,
          p_correlation_id, p_causation_id, p_caused_by, p_occurred_at, v_hash)
  RETURNING ev.stream_version, ev.global_position, ev.tx_id,
            to_char(ev.recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'), false
    INTO stream_version, global_position, tx_id, recorded_at, replayed;
END $body$
$create$, entry.name, entry.kinds);
    EXECUTE format('ALTER FUNCTION eventplane.%I(text, text, text, bigint, uuid, text, text, smallint, jsonb, uuid,
      uuid, text, timestamptz, boolean) OWNER TO eventplane_owner', entry.name);
    EXECUTE format('REVOKE ALL ON FUNCTION eventplane.%I(text, text, text, bigint, uuid, text, text, smallint, jsonb,
      uuid, uuid, text, timestamptz, boolean)
      FROM PUBLIC, eventplane_intent_writer, eventplane_fact_writer, eventplane_operator', entry.name);
  END LOOP;
END $do$;

-- EXECUTE as for the array entry points (0013): each role the kinds it may append.
GRANT EXECUTE ON FUNCTION eventplane.append_one_intent(text, text, text, bigint, uuid, text, text, smallint, jsonb,
  uuid, uuid, text, timestamptz, boolean) TO eventplane_intent_writer, eventplane_operator;
GRANT EXECUTE ON FUNCTION eventplane.append_one_fact(text, text, text, bigint, uuid, text, text, smallint, jsonb,
  uuid, uuid, text, timestamptz, boolean) TO eventplane_fact_writer, eventplane_operator;
GRANT EXECUTE ON FUNCTION eventplane.append_one_to_stream(text, text, text, bigint, uuid, text, text, smallint,
  jsonb, uuid, uuid, text, timestamptz, boolean) TO eventplane_operator;
