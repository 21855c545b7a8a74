-- eventplane 0013: a cheaper append and hash chain (issues 15 and 17). Applied
-- by the migration runner (store-pg migrate()); safe to re-apply.
--
-- Profiled first (docs/benchmarks.md, 2026-11-30 "append path profiled"): a
-- one-event append ran five SPI statements in its function (the name check as
-- a function call, the version lookup, the event ids extracted from the jsonb
-- payload, their probe, the insert) plus, per row, the chain trigger's own
-- statement looking the predecessor up; a 100-event batch also parsed the
-- whole payload as one jsonb document and converted every field of it to text
-- and back. Now:
--
-- 1. The batch comes as typed arrays, one per envelope field, and `data` as
--    one jsonb array (one parse; its elements are taken out with
--    jsonb_array_elements, not converted through text).
-- 2. The chain is computed by the append function, set-based, inside its one
--    INSERT: the previous hash of the stream is read by the version lookup
--    the function does anyway (same index probe, same row), and the batch's
--    hashes are one window aggregate over the batch in version order
--    (eventplane.chain_fold), on the canonical text of each row built from
--    the same values the row stores (eventplane.chain_canonical_fields, the
--    one definition of the canonical form, which chain_canonical now calls).
--    The hash stays the server's: application roles may not INSERT (0005),
--    and the functions take no hash argument.
-- 3. The row trigger events_chain stays for every other insert path (a
--    superuser, a test that holds a stream), but fires only for a row that
--    comes without a hash: `WHEN (NEW.hash IS NULL)` is evaluated by the
--    executor, so the append functions' rows never call it.
-- 4. Stored event ids are probed only when the caller asks (p_probe_ids): an
--    identical retry with an exact expectation always fails the version
--    check first (the stream moved on by its own events) and is classified
--    there; with `any` (or an id stored elsewhere), the insert fails with
--    23505 on events_event_id_key, which wrote nothing, and the store calls
--    again with p_probe_ids = true, which classifies as before (identical
--    retry, IdempotencyConflict, or an id of another tenant).
-- 5. The name checks are one expression in the body, not a function call.

-- The canonical text (0011, docs/architecture.md "The hash chain") from the
-- field values: the one definition. An SQL function with every argument used
-- once, so the planner inlines it where it is called.
CREATE OR REPLACE FUNCTION eventplane.chain_canonical_fields(
  p_event_id uuid, p_tenant text, p_kind text, p_category text, p_stream_id text, p_stream_version bigint,
  p_type text, p_schema_version smallint, p_data jsonb, p_correlation_id uuid, p_causation_id uuid,
  p_caused_by text, p_occurred_at timestamptz)
RETURNS text LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT '{"data": ' || p_data::text
      || ', "kind": "' || p_kind
      || '", "type": "' || p_type
      || '", "category": "' || p_category
      || '", "event_id": "' || p_event_id::text
      || '", "caused_by": ' || pg_catalog.to_json(p_caused_by)::text
      || ', "stream_id": "' || p_stream_id
      || '", "tenant_id": "' || p_tenant
      || '", "occurred_at": "'
      || pg_catalog.to_char(p_occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
      || '", "causation_id": ' || coalesce('"' || p_causation_id::text || '"', 'null')
      || ', "correlation_id": "' || p_correlation_id::text
      || '", "schema_version": ' || p_schema_version::text
      || ', "stream_version": ' || p_stream_version::text || '}'
$$;

CREATE OR REPLACE FUNCTION eventplane.chain_canonical(p_event eventplane.events)
RETURNS text LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT eventplane.chain_canonical_fields(p_event.event_id, p_event.tenant_id, p_event.kind, p_event.category,
           p_event.stream_id, p_event.stream_version, p_event.type, p_event.schema_version, p_event.data,
           p_event.correlation_id, p_event.causation_id, p_event.caused_by, p_event.occurred_at)
$$;

-- One link of the chain as an aggregate step: the state is the previous
-- event's hash; the first row of a batch starts from p_prev (the stream's
-- stored last hash, or NULL for a new stream: 32 zero bytes). PL/pgSQL, not
-- SQL: an aggregate calls an SQL step function through the SQL function
-- executor, which parses and plans its body again in every statement that
-- uses it (profiled: 8% of a one-event append); PL/pgSQL keeps it compiled
-- for the session and evaluates the expression directly.
CREATE OR REPLACE FUNCTION eventplane.chain_fold_step(p_state bytea, p_prev bytea, p_canonical text)
RETURNS bytea LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
  RETURN pg_catalog.sha256(
           coalesce(p_state, p_prev, '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea)
           || pg_catalog.convert_to(p_canonical, 'UTF8'));
END $$;

-- As a window aggregate ordered by version, each row's hash chained from the one before.
DROP AGGREGATE IF EXISTS eventplane.chain_fold(bytea, text);
CREATE AGGREGATE eventplane.chain_fold(bytea, text) (SFUNC = eventplane.chain_fold_step, STYPE = bytea);

DROP TRIGGER IF EXISTS events_chain ON eventplane.events;
CREATE TRIGGER events_chain BEFORE INSERT ON eventplane.events
  FOR EACH ROW WHEN (NEW.hash IS NULL) EXECUTE FUNCTION eventplane.chain_event();

-- The jsonb entry points of 0010 and their helpers go.
DROP FUNCTION IF EXISTS eventplane.append_intents(text, text, text, bigint, jsonb);
DROP FUNCTION IF EXISTS eventplane.append_facts(text, text, text, bigint, jsonb);
DROP FUNCTION IF EXISTS eventplane.append_to_stream(text, text, text, bigint, jsonb);
DROP FUNCTION IF EXISTS eventplane.check_append_names(text, text, text);
DROP FUNCTION IF EXISTS eventplane.stored_result(jsonb);
DROP FUNCTION IF EXISTS eventplane.is_identical_retry(text, text, text, jsonb);
DROP FUNCTION IF EXISTS eventplane.stored_rows(jsonb);

-- Whether every event of the batch is already stored, identically, in this stream.
CREATE OR REPLACE FUNCTION eventplane.is_identical_retry(
  p_tenant text, p_category text, p_stream_id text, p_event_ids uuid[], p_kinds text[], p_types text[],
  p_schema_versions smallint[], p_data jsonb, p_correlation_ids uuid[], p_causation_ids uuid[],
  p_caused_by text[], p_occurred_at timestamptz[])
RETURNS boolean LANGUAGE sql STABLE AS $$
  SELECT count(*) = cardinality(p_event_ids)
    FROM ROWS FROM (unnest(p_event_ids), unnest(p_kinds), unnest(p_types), unnest(p_schema_versions),
                    jsonb_array_elements(p_data), unnest(p_correlation_ids), unnest(p_causation_ids),
                    unnest(p_caused_by), unnest(p_occurred_at))
           AS x(event_id, kind, type, schema_version, data, correlation_id, causation_id, caused_by, occurred_at)
    JOIN eventplane.events ev ON ev.event_id = x.event_id
   WHERE ev.tenant_id = p_tenant AND ev.category = p_category AND ev.stream_id = p_stream_id
     AND ev.kind = x.kind AND ev.type = x.type AND ev.schema_version = x.schema_version
     AND ev.data = x.data AND ev.correlation_id = x.correlation_id
     AND ev.causation_id IS NOT DISTINCT FROM x.causation_id
     AND ev.caused_by = x.caused_by AND ev.occurred_at = x.occurred_at
$$;

-- What an identical retry returns: the stored events in batch order, and the
-- transaction and time of the last.
CREATE OR REPLACE FUNCTION eventplane.stored_result(p_event_ids uuid[],
  OUT stream_versions bigint[], OUT global_positions bigint[], OUT tx_id xid8, OUT recorded_at timestamptz,
  OUT replayed boolean)
LANGUAGE sql STABLE AS $$
  SELECT array_agg(ev.stream_version ORDER BY x.ord), array_agg(ev.global_position ORDER BY x.ord),
         (array_agg(ev.tx_id ORDER BY x.ord DESC))[1], (array_agg(ev.recorded_at ORDER BY x.ord DESC))[1], true
    FROM unnest(p_event_ids) WITH ORDINALITY AS x(id, ord)
    JOIN eventplane.events ev ON ev.event_id = x.id
$$;

-- One body for the three entry points, the kinds each allows inlined
-- (format(): %% is a literal %). SECURITY DEFINER with a pinned search_path
-- and enable_sort = off as in 0005 (the version lookup stays on the stream
-- index; the window's sort of the batch is the only plan there is).
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
  v_conflict uuid;
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

  IF p_expected >= 0 AND v_current <> p_expected THEN
    IF eventplane.is_identical_retry(p_tenant, p_category, p_stream_id, p_event_ids, p_kinds, p_types,
         p_schema_versions, p_data, p_correlation_ids, p_causation_ids, p_caused_by, p_occurred_at) THEN
      SELECT * INTO stream_versions, global_positions, tx_id, recorded_at, replayed
        FROM eventplane.stored_result(p_event_ids);
      RETURN;
    END IF;
    RAISE EXCEPTION 'stream is at version %%, expected %%', v_current, p_expected
      USING ERRCODE = 'EPWEV', DETAIL = v_current::text;
  END IF;

  -- Asked for after an insert failed on a stored event id: an identical
  -- retry returns what is stored, an id stored in this tenant with other
  -- content is a conflict (an id of another tenant is not visible here: the
  -- insert below fails on it again).
  IF p_probe_ids THEN
    IF EXISTS (SELECT 1 FROM unnest(p_event_ids) u(id),
                  LATERAL (SELECT 1 FROM eventplane.events ev WHERE ev.event_id = u.id LIMIT 1) hit) THEN
      IF eventplane.is_identical_retry(p_tenant, p_category, p_stream_id, p_event_ids, p_kinds, p_types,
           p_schema_versions, p_data, p_correlation_ids, p_causation_ids, p_caused_by, p_occurred_at) THEN
        SELECT * INTO stream_versions, global_positions, tx_id, recorded_at, replayed
          FROM eventplane.stored_result(p_event_ids);
        RETURN;
      END IF;
      SELECT ev.event_id INTO v_conflict FROM eventplane.events ev WHERE ev.event_id = ANY (p_event_ids) LIMIT 1;
      RAISE EXCEPTION 'event id %% is already stored with different content', v_conflict
        USING ERRCODE = 'EPIDC', DETAIL = v_conflict::text;
    END IF;
  END IF;

  -- A concurrent append that takes one of these versions (or event ids)
  -- first makes this insert wait for its commit and fail with 23505 on
  -- events_stream_version_key (events_event_id_key); the statement wrote
  -- nothing, and the caller appends again (store-pg event-store.ts). The
  -- rows enter in version order (the window's order), so positions grow with
  -- versions within the batch as they do across appends.
  WITH ins AS (
    INSERT INTO eventplane.events AS ev (event_id, tenant_id, kind, category, stream_id, stream_version, type,
                                         schema_version, data, correlation_id, causation_id, caused_by, occurred_at,
                                         hash)
    SELECT x.event_id, p_tenant,
           CASE WHEN x.kind = ANY (%L::text[]) THEN x.kind ELSE eventplane.refuse_kind(x.kind) END,
           p_category, p_stream_id, v_current + x.ord, x.type,
           x.schema_version, x.data, x.correlation_id, x.causation_id, x.caused_by, x.occurred_at,
           eventplane.chain_fold(v_prev, eventplane.chain_canonical_fields(x.event_id, p_tenant, x.kind, p_category,
             p_stream_id, v_current + x.ord, x.type, x.schema_version, x.data, x.correlation_id, x.causation_id,
             x.caused_by, x.occurred_at)) OVER (ORDER BY x.ord)
      FROM ROWS FROM (unnest(p_event_ids), unnest(p_kinds), unnest(p_types), unnest(p_schema_versions),
                      jsonb_array_elements(p_data), unnest(p_correlation_ids), unnest(p_causation_ids),
                      unnest(p_caused_by), unnest(p_occurred_at))
           WITH ORDINALITY AS x(event_id, kind, type, schema_version, data, correlation_id, causation_id,
                                caused_by, occurred_at, ord)
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

ALTER FUNCTION eventplane.chain_canonical_fields(uuid, text, text, text, text, bigint, text, smallint, jsonb, uuid,
  uuid, text, timestamptz) OWNER TO eventplane_owner;
ALTER FUNCTION eventplane.chain_fold_step(bytea, bytea, text) OWNER TO eventplane_owner;
ALTER AGGREGATE eventplane.chain_fold(bytea, text) OWNER TO eventplane_owner;
ALTER FUNCTION eventplane.is_identical_retry(text, text, text, uuid[], text[], text[], smallint[], jsonb, uuid[],
  uuid[], text[], timestamptz[]) OWNER TO eventplane_owner;
ALTER FUNCTION eventplane.stored_result(uuid[]) OWNER TO eventplane_owner;
DO $$
DECLARE
  fn text;
BEGIN
  FOREACH fn IN ARRAY ARRAY['append_intents', 'append_facts', 'append_to_stream'] LOOP
    EXECUTE format('ALTER FUNCTION eventplane.%I(text, text, text, bigint, uuid[], text[], text[], smallint[], jsonb,
      uuid[], uuid[], text[], timestamptz[], boolean) OWNER TO eventplane_owner', fn);
    EXECUTE format('REVOKE ALL ON FUNCTION eventplane.%I(text, text, text, bigint, uuid[], text[], text[], smallint[],
      jsonb, uuid[], uuid[], text[], timestamptz[], boolean)
      FROM PUBLIC, eventplane_intent_writer, eventplane_fact_writer, eventplane_operator', fn);
  END LOOP;
END $$;
-- chain_canonical_fields, chain_fold_step and chain_fold stay executable by
-- everyone, like 0011's chain_canonical and chain_link: pure functions of
-- their arguments (and the planner inlines only what the caller may execute).
REVOKE ALL ON FUNCTION eventplane.is_identical_retry(text, text, text, uuid[], text[], text[], smallint[], jsonb, uuid[], uuid[], text[],
    timestamptz[]), eventplane.stored_result(uuid[])
  FROM PUBLIC;
GRANT EXECUTE ON FUNCTION eventplane.append_intents(text, text, text, bigint, uuid[], text[], text[], smallint[], jsonb,
  uuid[], uuid[], text[], timestamptz[], boolean) TO eventplane_intent_writer, eventplane_operator;
GRANT EXECUTE ON FUNCTION eventplane.append_facts(text, text, text, bigint, uuid[], text[], text[], smallint[], jsonb,
  uuid[], uuid[], text[], timestamptz[], boolean) TO eventplane_fact_writer, eventplane_operator;
GRANT EXECUTE ON FUNCTION eventplane.append_to_stream(text, text, text, bigint, uuid[], text[], text[], smallint[],
  jsonb, uuid[], uuid[], text[], timestamptz[], boolean) TO eventplane_operator;
