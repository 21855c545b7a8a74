-- eventplane 0010: a cheaper append (issue 15). Applied by the migration runner
-- (store-pg migrate()); safe to re-apply.
--
-- 1. No NOTIFY in the appending transaction. The statement trigger took
--    PostgreSQL's global notify lock from pre-commit until after the commit's
--    WAL flush, so no two appending commits could share a flush. The relay is
--    now woken after the commit, off the write path: PgEventStore sends one
--    coalesced NOTIFY on the same channel after its appends commit (see
--    store-pg append-notifier.ts), and the relay polls as a fallback.
-- 2. The per-row CHECKs on the tenant, category and stream id (regex matches)
--    become one check per append in the append functions: every row of one
--    append has the same three values, and since 0005 only those SECURITY
--    DEFINER functions (owned by the NOLOGIN owner) may insert.
-- 3. event_id is the primary key; the separate unique index on it and the
--    primary key index on global_position go (global_position is an identity
--    column the functions never set; the (tx_id, global_position) index
--    serves every read in the global order). One index less per row.
-- 4. The correlation index holds only events that are not the root of their
--    chain: a root has correlation_id = event_id (core enforces it for events
--    without a causation) and is found by its primary key. Most appends in a
--    system that starts chains with an intent add no entry there.
-- 5. No subtransaction and no speculative insertion per append. Stored event
--    ids are found before the insert (one primary key probe per event); a
--    version or event id a concurrent append takes first makes the plain
--    insert fail with 23505, and the caller appends again, which the checks
--    then classify (wrong version, identical retry, conflict). An exception
--    block would start a subtransaction on every append; `ON CONFLICT DO
--    NOTHING` cost ~30% more server CPU per row (measured, docs/benchmarks.md).
-- 6. An append returns one row: the stream versions and global positions of
--    its events in batch order, its transaction id and its recorded_at.

DROP TRIGGER IF EXISTS events_notify ON eventplane.events;
DROP FUNCTION IF EXISTS eventplane.notify_append();

ALTER TABLE eventplane.events DROP CONSTRAINT IF EXISTS events_tenant_id_check;
ALTER TABLE eventplane.events DROP CONSTRAINT IF EXISTS events_category_check;
ALTER TABLE eventplane.events DROP CONSTRAINT IF EXISTS events_stream_id_check;

DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'events_pkey'
                AND conrelid = 'eventplane.events'::regclass) THEN
    ALTER TABLE eventplane.events DROP CONSTRAINT events_pkey;
    ALTER TABLE eventplane.events DROP CONSTRAINT events_event_id_key;
    -- Named as the unique constraint was, so a duplicate event id still reports events_event_id_key.
    ALTER TABLE eventplane.events ADD CONSTRAINT events_event_id_key PRIMARY KEY (event_id);
  END IF;
END $$;

DROP INDEX IF EXISTS eventplane.events_correlation_idx;
CREATE INDEX events_correlation_idx ON eventplane.events (tenant_id, correlation_id)
  WHERE correlation_id <> event_id;

-- A chain's events: its root through the primary key, the rest through the partial index.
CREATE OR REPLACE FUNCTION eventplane.read_correlation(p_tenant text, p_correlation_id uuid, p_limit int)
RETURNS SETOF eventplane.events LANGUAGE plpgsql AS $$
BEGIN
  PERFORM set_config('eventplane.tenant', p_tenant, true);
  RETURN QUERY SELECT * FROM (
      SELECT * FROM eventplane.events e
       WHERE e.event_id = p_correlation_id AND e.correlation_id = p_correlation_id AND e.tenant_id = p_tenant
      UNION ALL
      SELECT * FROM eventplane.events e
       WHERE e.tenant_id = p_tenant AND e.correlation_id = p_correlation_id AND e.correlation_id <> e.event_id
    ) e
    ORDER BY e.tx_id, e.global_position LIMIT p_limit;
END $$;

-- The entry points (0005), with a new result shape: dropped and created again.
DROP FUNCTION IF EXISTS eventplane.append_intents(text, text, text, bigint, jsonb);
DROP FUNCTION IF EXISTS eventplane.append_facts(text, text, text, bigint, jsonb);
DROP FUNCTION IF EXISTS eventplane.append_to_stream(text, text, text, bigint, jsonb);

-- Refuses a name the dropped CHECKs refused (SQLSTATE 23514 as they raised).
CREATE OR REPLACE FUNCTION eventplane.check_append_names(p_tenant text, p_category text, p_stream_id text)
RETURNS void LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  IF NOT (p_tenant ~ '^[A-Za-z0-9_-]+$' AND length(p_tenant) <= 64) THEN
    RAISE EXCEPTION 'invalid tenant id' USING ERRCODE = '23514', CONSTRAINT = 'events_tenant_id_check';
  END IF;
  IF NOT (p_category ~ '^[A-Za-z0-9_-]+$' AND length(p_category) <= 64) THEN
    RAISE EXCEPTION 'invalid category' USING ERRCODE = '23514', CONSTRAINT = 'events_category_check';
  END IF;
  IF NOT (p_stream_id ~ '^[A-Za-z0-9_:-]+$' AND length(p_stream_id) <= 128) THEN
    RAISE EXCEPTION 'invalid stream id' USING ERRCODE = '23514', CONSTRAINT = 'events_stream_id_check';
  END IF;
END $$;

-- What an identical retry returns: the stored events of p_events in batch
-- order (versions, positions), and the transaction and time of the last.
CREATE OR REPLACE FUNCTION eventplane.stored_result(p_events jsonb,
  OUT stream_versions bigint[], OUT global_positions bigint[], OUT tx_id xid8, OUT recorded_at timestamptz,
  OUT replayed boolean)
LANGUAGE sql STABLE AS $$
  SELECT array_agg(ev.stream_version ORDER BY x.ord), array_agg(ev.global_position ORDER BY x.ord),
         (array_agg(ev.tx_id ORDER BY x.ord DESC))[1], (array_agg(ev.recorded_at ORDER BY x.ord DESC))[1], true
    FROM jsonb_array_elements(p_events) WITH ORDINALITY AS x(e, ord)
    JOIN eventplane.events ev ON ev.event_id = (x.e ->> 'event_id')::uuid
$$;

-- One body for the three entry points, the kinds each allows inlined
-- (format(): %% is a literal %). SECURITY DEFINER with a pinned search_path
-- and enable_sort = off as in 0005.
DO $do$
DECLARE
  entry record;
BEGIN
  FOR entry IN SELECT * FROM (VALUES
      ('append_intents', ARRAY['intent']),
      ('append_facts', ARRAY['fact', 'internal']),
      ('append_to_stream', ARRAY['intent', 'fact', 'internal'])) AS e(name, kinds) LOOP
    EXECUTE format($create$
CREATE FUNCTION eventplane.%I(
  p_tenant text, p_category text, p_stream_id text, p_expected bigint, p_events jsonb,
  OUT stream_versions bigint[], OUT global_positions bigint[], OUT tx_id xid8, OUT recorded_at timestamptz,
  OUT replayed boolean)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET enable_sort = off AS $body$
#variable_conflict use_column
DECLARE
  v_current bigint;
  v_ids uuid[];
  v_conflict uuid;
BEGIN
  PERFORM eventplane.check_append_names(p_tenant, p_category, p_stream_id);
  PERFORM set_config('eventplane.tenant', p_tenant, true);
  SELECT ev.stream_version INTO v_current FROM eventplane.events ev
   WHERE ev.tenant_id = p_tenant AND ev.category = p_category AND ev.stream_id = p_stream_id
   ORDER BY ev.stream_version DESC LIMIT 1;
  v_current := coalesce(v_current, 0);

  IF p_expected >= 0 AND v_current <> p_expected THEN
    IF eventplane.is_identical_retry(p_tenant, p_category, p_stream_id, p_events) THEN
      SELECT * INTO stream_versions, global_positions, tx_id, recorded_at, replayed
        FROM eventplane.stored_result(p_events);
      RETURN;
    END IF;
    RAISE EXCEPTION 'stream is at version %%, expected %%', v_current, p_expected
      USING ERRCODE = 'EPWEV', DETAIL = v_current::text;
  END IF;

  -- An event id of the batch already stored (in this tenant): an identical
  -- retry returns what is stored, anything else is a conflict.
  v_ids := ARRAY(SELECT (e ->> 'event_id')::uuid FROM jsonb_array_elements(p_events) e);
  -- One primary key probe per id (a lateral lookup, whatever the statistics say).
  IF EXISTS (SELECT 1 FROM unnest(v_ids) u(id),
                LATERAL (SELECT 1 FROM eventplane.events ev WHERE ev.event_id = u.id LIMIT 1) hit) THEN
    IF eventplane.is_identical_retry(p_tenant, p_category, p_stream_id, p_events) THEN
      SELECT * INTO stream_versions, global_positions, tx_id, recorded_at, replayed
        FROM eventplane.stored_result(p_events);
      RETURN;
    END IF;
    SELECT ev.event_id INTO v_conflict FROM eventplane.events ev WHERE ev.event_id = ANY (v_ids) LIMIT 1;
    RAISE EXCEPTION 'event id %% is already stored with different content', v_conflict
      USING ERRCODE = 'EPIDC', DETAIL = v_conflict::text;
  END IF;

  -- A concurrent append that takes one of these versions (or event ids)
  -- first makes this insert wait for its commit and fail with 23505 on
  -- events_stream_version_key (events_event_id_key); the caller appends again
  -- and the checks above classify that attempt (store-pg event-store.ts). An
  -- event id stored in another tenant (not visible here) fails the same way.
  WITH ins AS (
    INSERT INTO eventplane.events AS ev (event_id, tenant_id, kind, category, stream_id, stream_version, type,
                                         schema_version, data, correlation_id, causation_id, caused_by, occurred_at)
    SELECT x.event_id, p_tenant,
           CASE WHEN x.kind = ANY (%L::text[]) THEN x.kind ELSE eventplane.refuse_kind(x.kind) END,
           p_category, p_stream_id, v_current + x.ord, x.type,
           x.schema_version, x.data, x.correlation_id, x.causation_id, x.caused_by, x.occurred_at
      FROM ROWS FROM (jsonb_to_recordset(p_events) AS (event_id uuid, kind text, type text, schema_version smallint,
             data jsonb, correlation_id uuid, causation_id uuid, caused_by text, occurred_at timestamptz))
           WITH ORDINALITY AS x(event_id, kind, type, schema_version, data, correlation_id, causation_id,
                                caused_by, occurred_at, ord)
     ORDER BY x.ord
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

ALTER FUNCTION eventplane.check_append_names(text, text, text) OWNER TO eventplane_owner;
ALTER FUNCTION eventplane.stored_result(jsonb) OWNER TO eventplane_owner;
ALTER FUNCTION eventplane.append_intents(text, text, text, bigint, jsonb) OWNER TO eventplane_owner;
ALTER FUNCTION eventplane.append_facts(text, text, text, bigint, jsonb) OWNER TO eventplane_owner;
ALTER FUNCTION eventplane.append_to_stream(text, text, text, bigint, jsonb) OWNER TO eventplane_owner;
REVOKE ALL ON FUNCTION eventplane.check_append_names(text, text, text), eventplane.stored_result(jsonb),
  eventplane.append_intents(text, text, text, bigint, jsonb),
  eventplane.append_facts(text, text, text, bigint, jsonb),
  eventplane.append_to_stream(text, text, text, bigint, jsonb)
  FROM PUBLIC, eventplane_intent_writer, eventplane_fact_writer, eventplane_operator;
GRANT EXECUTE ON FUNCTION eventplane.append_intents(text, text, text, bigint, jsonb)
  TO eventplane_intent_writer, eventplane_operator;
GRANT EXECUTE ON FUNCTION eventplane.append_facts(text, text, text, bigint, jsonb)
  TO eventplane_fact_writer, eventplane_operator;
GRANT EXECUTE ON FUNCTION eventplane.append_to_stream(text, text, text, bigint, jsonb) TO eventplane_operator;
