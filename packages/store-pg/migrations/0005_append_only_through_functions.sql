-- eventplane 0005: appends only through the append functions, serialized by
-- nothing another role can hold. Applied by the migration runner (store-pg
-- migrate()); safe to re-apply.
--
-- Until now application roles held INSERT on eventplane.events, so a direct
-- INSERT could choose the columns the store must assign: tx_id (a row committed
-- with an old tx_id after a reader's checkpoint is never read by the gap-safe
-- read), global_position (OVERRIDING SYSTEM VALUE), recorded_at, a stream_version
-- that breaks continuity, any caused_by. Now no application role may INSERT:
-- appends go through three SECURITY DEFINER functions owned by the NOLOGIN
-- owner, with a pinned search_path, each granted to the roles that may append
-- those kinds. They take only envelope fields; the server assigns the rest.
--
-- Appends to one stream were serialized with pg_advisory_xact_lock on a hash of
-- the stream, a key any role can compute and hold (advisory locks have no
-- privileges). Now nothing but the unique (tenant, category, stream, version)
-- index serializes them: an append inserts the versions after the stream's
-- last committed one; a concurrent append to the same stream waits on those
-- index entries and then finds them taken. Only the append functions insert,
-- so no other role can hold a stream's next version.

-- The append functions insert as the owner, into the tenant they set themselves.
DROP POLICY IF EXISTS owner_append ON eventplane.events;
CREATE POLICY owner_append ON eventplane.events FOR INSERT TO eventplane_owner
  WITH CHECK (tenant_id = current_setting('eventplane.tenant', true));
DROP POLICY IF EXISTS intent_insert ON eventplane.events;
DROP POLICY IF EXISTS fact_insert ON eventplane.events;
DROP POLICY IF EXISTS operator_insert ON eventplane.events;
REVOKE INSERT ON eventplane.events FROM eventplane_intent_writer, eventplane_fact_writer, eventplane_operator;

-- Raised from inside the insert for an event whose kind the calling function does not allow.
CREATE OR REPLACE FUNCTION eventplane.refuse_kind(p_kind text) RETURNS text LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  RAISE EXCEPTION 'this role may not append events of kind %', p_kind USING ERRCODE = '42501';
END $$;

-- The entry points, one per set of kinds; the role's EXECUTE grant decides
-- which kinds it may append. They share one body (0001's append_to_stream,
-- without the advisory lock, checking kinds), created here for each
-- entry point with its kinds inlined (format(): %% is a literal %), so an
-- append stays one function call. SECURITY DEFINER: they run as the owner,
-- with search_path pinned. enable_sort = off keeps the stream's last version
-- looked up on the stream index: on a table without statistics yet (a new
-- database), the cached generic plan could otherwise scan the tenant's whole
-- correlation index and sort, costing CPU that grows with the tenant (seen:
-- 25x per append after 12,000 events); the other statements here have no
-- plan that a sort could replace.
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
  p_tenant text, p_category text, p_stream_id text, p_expected bigint, p_events jsonb)
RETURNS TABLE (event_id uuid, stream_version bigint, global_position bigint, tx_id xid8,
               recorded_at timestamptz, replayed boolean)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET enable_sort = off AS $body$
#variable_conflict use_column
DECLARE
  v_current bigint;
  v_constraint text;
  v_conflict uuid;
BEGIN
  PERFORM set_config('eventplane.tenant', p_tenant, true);
  SELECT ev.stream_version INTO v_current FROM eventplane.events ev
   WHERE ev.tenant_id = p_tenant AND ev.category = p_category AND ev.stream_id = p_stream_id
   ORDER BY ev.stream_version DESC LIMIT 1;
  v_current := coalesce(v_current, 0);

  IF p_expected >= 0 AND v_current <> p_expected THEN
    IF eventplane.is_identical_retry(p_tenant, p_category, p_stream_id, p_events) THEN
      RETURN QUERY SELECT * FROM eventplane.stored_rows(p_events);
      RETURN;
    END IF;
    RAISE EXCEPTION 'stream is at version %%, expected %%', v_current, p_expected
      USING ERRCODE = 'EPWEV', DETAIL = v_current::text;
  END IF;

  -- A plain insert in a subtransaction is cheaper than ON CONFLICT; a
  -- duplicate event id or version lands in the handler. If the first rows were
  -- new and a later one collides, the retry cannot be identical, so the raise
  -- below discards the rows already returned with the whole statement.
  BEGIN
    RETURN QUERY
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
      RETURNING ev.event_id, ev.stream_version, ev.global_position, ev.tx_id, ev.recorded_at, false;
  EXCEPTION WHEN unique_violation THEN
    GET STACKED DIAGNOSTICS v_constraint = CONSTRAINT_NAME;
    IF v_constraint NOT IN ('events_event_id_key', 'events_stream_version_key') THEN
      RAISE;
    END IF;
    IF eventplane.is_identical_retry(p_tenant, p_category, p_stream_id, p_events) THEN
      RETURN QUERY SELECT * FROM eventplane.stored_rows(p_events);
      RETURN;
    END IF;
    -- A concurrent append committed these versions first (this insert waited
    -- for it). An exact expectation has failed; `any` is retried by the caller
    -- (EPRTY) as a new statement, since rows this one returned are void.
    IF v_constraint = 'events_stream_version_key' THEN
      SELECT ev.stream_version INTO v_current FROM eventplane.events ev
       WHERE ev.tenant_id = p_tenant AND ev.category = p_category AND ev.stream_id = p_stream_id
       ORDER BY ev.stream_version DESC LIMIT 1;
      IF p_expected >= 0 THEN
        RAISE EXCEPTION 'stream is at version %%, expected %%', v_current, p_expected
          USING ERRCODE = 'EPWEV', DETAIL = v_current::text;
      END IF;
      RAISE EXCEPTION 'a concurrent append took version %%; append again', v_current USING ERRCODE = 'EPRTY';
    END IF;
    SELECT (e ->> 'event_id')::uuid INTO v_conflict FROM jsonb_array_elements(p_events) e
     WHERE EXISTS (SELECT 1 FROM eventplane.events ev WHERE ev.event_id = (e ->> 'event_id')::uuid)
     LIMIT 1;
    RAISE EXCEPTION 'event id %% is already stored with different content', coalesce(v_conflict::text, '(in another tenant)')
      USING ERRCODE = 'EPIDC', DETAIL = coalesce(v_conflict::text, '?');
  END;
END $body$
$create$, entry.name, entry.kinds);
  END LOOP;
END $do$;

ALTER FUNCTION eventplane.refuse_kind(text) OWNER TO eventplane_owner;
ALTER FUNCTION eventplane.append_intents(text, text, text, bigint, jsonb) OWNER TO eventplane_owner;
ALTER FUNCTION eventplane.append_facts(text, text, text, bigint, jsonb) OWNER TO eventplane_owner;
ALTER FUNCTION eventplane.append_to_stream(text, text, text, bigint, jsonb) OWNER TO eventplane_owner;
REVOKE ALL ON FUNCTION eventplane.refuse_kind(text),
  eventplane.append_intents(text, text, text, bigint, jsonb),
  eventplane.append_facts(text, text, text, bigint, jsonb),
  eventplane.append_to_stream(text, text, text, bigint, jsonb),
  eventplane.is_identical_retry(text, text, text, jsonb), eventplane.stored_rows(jsonb)
  FROM PUBLIC, eventplane_intent_writer, eventplane_fact_writer, eventplane_operator;
GRANT EXECUTE ON FUNCTION eventplane.append_intents(text, text, text, bigint, jsonb)
  TO eventplane_intent_writer, eventplane_operator;
GRANT EXECUTE ON FUNCTION eventplane.append_facts(text, text, text, bigint, jsonb)
  TO eventplane_fact_writer, eventplane_operator;
GRANT EXECUTE ON FUNCTION eventplane.append_to_stream(text, text, text, bigint, jsonb) TO eventplane_operator;
