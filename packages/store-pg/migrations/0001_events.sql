-- eventplane 0001: the append-only event log, its roles, row level security and
-- the append / read functions. Applied by the migration runner (store-pg
-- migrate()) or by hand with `psql -v ON_ERROR_STOP=1 -f`; safe to re-apply.

CREATE SCHEMA IF NOT EXISTS eventplane;

-- Roles are cluster-wide; several databases (test runs) may create them at the
-- same moment, so a lost race is not an error.
DO $$
DECLARE r text;
BEGIN
  FOREACH r IN ARRAY ARRAY['eventplane_owner'] LOOP
    BEGIN
      EXECUTE format('CREATE ROLE %I NOLOGIN', r);
    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
    END;
  END LOOP;
  FOREACH r IN ARRAY ARRAY['eventplane_intent_writer', 'eventplane_fact_writer', 'eventplane_reader',
                           'eventplane_relay', 'eventplane_operator'] LOOP
    BEGIN
      EXECUTE format('CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS', r);
    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
    END;
    -- A session left idle inside a transaction holds back the gap-safe read
    -- for the whole cluster; app roles get a bound.
    BEGIN
      EXECUTE format('ALTER ROLE %I SET idle_in_transaction_session_timeout = %L', r, '30s');
    EXCEPTION WHEN OTHERS THEN NULL;
    END;
  END LOOP;
END $$;

CREATE TABLE IF NOT EXISTS eventplane.events (
  global_position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tx_id           xid8        NOT NULL DEFAULT pg_current_xact_id(),
  event_id        uuid        NOT NULL UNIQUE,
  tenant_id       text        NOT NULL CHECK (tenant_id ~ '^[A-Za-z0-9_-]+$' AND length(tenant_id) <= 64),
  kind            text        NOT NULL CHECK (kind IN ('intent', 'fact', 'internal')),
  category        text        NOT NULL CHECK (category ~ '^[A-Za-z0-9_-]+$' AND length(category) <= 64),
  stream_id       text        NOT NULL CHECK (stream_id ~ '^[A-Za-z0-9_:-]+$' AND length(stream_id) <= 128),
  stream_version  bigint      NOT NULL CHECK (stream_version >= 1),
  type            text        NOT NULL CHECK (type ~ '^[A-Za-z0-9_-]+$' AND length(type) <= 128),
  schema_version  smallint    NOT NULL CHECK (schema_version >= 1),
  data            jsonb       NOT NULL CHECK (jsonb_typeof(data) = 'object'),
  correlation_id  uuid        NOT NULL,
  causation_id    uuid,
  caused_by       text        NOT NULL,
  occurred_at     timestamptz NOT NULL,
  recorded_at     timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT events_stream_version_key UNIQUE (tenant_id, category, stream_id, stream_version)
);
CREATE INDEX IF NOT EXISTS events_global_order_idx ON eventplane.events (tx_id, global_position);
CREATE INDEX IF NOT EXISTS events_correlation_idx ON eventplane.events (tenant_id, correlation_id);
ALTER TABLE eventplane.events OWNER TO eventplane_owner;
ALTER SCHEMA eventplane OWNER TO eventplane_owner;

-- Append-only, for every role including the owner: statement-level triggers
-- fire even when RLS hides every row, so an UPDATE that matches nothing still fails.
CREATE OR REPLACE FUNCTION eventplane.reject_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'eventplane.events is append-only: % is not allowed', TG_OP
    USING ERRCODE = 'EPAPO';
END $$;
DROP TRIGGER IF EXISTS events_no_update_delete ON eventplane.events;
CREATE TRIGGER events_no_update_delete BEFORE UPDATE OR DELETE ON eventplane.events
  FOR EACH STATEMENT EXECUTE FUNCTION eventplane.reject_change();
DROP TRIGGER IF EXISTS events_no_truncate ON eventplane.events;
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON eventplane.events
  FOR EACH STATEMENT EXECUTE FUNCTION eventplane.reject_change();

-- Wake the relay and live readers once per appending statement.
CREATE OR REPLACE FUNCTION eventplane.notify_append() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('eventplane_events', '');
  RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS events_notify ON eventplane.events;
CREATE TRIGGER events_notify AFTER INSERT ON eventplane.events
  FOR EACH STATEMENT EXECUTE FUNCTION eventplane.notify_append();

-- Tenant isolation in the database: a session sees and writes only the tenant
-- it set with set_config('eventplane.tenant', t, true) in its transaction.
ALTER TABLE eventplane.events ENABLE ROW LEVEL SECURITY;
ALTER TABLE eventplane.events FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS tenant_read ON eventplane.events;
CREATE POLICY tenant_read ON eventplane.events FOR SELECT
  TO eventplane_owner, eventplane_intent_writer, eventplane_fact_writer, eventplane_reader
  USING (tenant_id = current_setting('eventplane.tenant', true));
DROP POLICY IF EXISTS intent_insert ON eventplane.events;
CREATE POLICY intent_insert ON eventplane.events FOR INSERT TO eventplane_intent_writer
  WITH CHECK (tenant_id = current_setting('eventplane.tenant', true) AND kind = 'intent');
DROP POLICY IF EXISTS fact_insert ON eventplane.events;
CREATE POLICY fact_insert ON eventplane.events FOR INSERT TO eventplane_fact_writer
  WITH CHECK (tenant_id = current_setting('eventplane.tenant', true) AND kind IN ('fact', 'internal'));
DROP POLICY IF EXISTS relay_read ON eventplane.events;
CREATE POLICY relay_read ON eventplane.events FOR SELECT TO eventplane_relay, eventplane_operator USING (true);
DROP POLICY IF EXISTS operator_insert ON eventplane.events;
CREATE POLICY operator_insert ON eventplane.events FOR INSERT TO eventplane_operator
  WITH CHECK (tenant_id = current_setting('eventplane.tenant', true));

REVOKE ALL ON eventplane.events FROM PUBLIC;
GRANT USAGE ON SCHEMA eventplane TO eventplane_intent_writer, eventplane_fact_writer, eventplane_reader,
  eventplane_relay, eventplane_operator;
GRANT SELECT, INSERT ON eventplane.events TO eventplane_intent_writer, eventplane_fact_writer, eventplane_operator;
GRANT SELECT ON eventplane.events TO eventplane_reader, eventplane_relay;

-- append_to_stream: the one-round-trip append. Sets the tenant for this
-- transaction only, serializes appends to one stream, checks the expected
-- version (-1 any, 0 no stream, n exact) and inserts the batch. An identical
-- retry (every event id already stored in this stream with the same content)
-- returns the stored rows. Errors: EPWEV wrong expected version (DETAIL =
-- actual), EPIDC idempotency conflict (DETAIL = first conflicting event id).
-- The fast path does no lookup by event id: the insert finds conflicts.
CREATE OR REPLACE FUNCTION eventplane.append_to_stream(
  p_tenant text, p_category text, p_stream_id text, p_expected bigint, p_events jsonb)
RETURNS TABLE (event_id uuid, stream_version bigint, global_position bigint, tx_id xid8,
               recorded_at timestamptz, replayed boolean)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_current bigint;
  v_constraint text;
  v_conflict uuid;
BEGIN
  PERFORM set_config('eventplane.tenant', p_tenant, true);
  PERFORM pg_advisory_xact_lock(hashtextextended(p_tenant || '/' || p_category || '/' || p_stream_id, 0));

  SELECT ev.stream_version INTO v_current FROM eventplane.events ev
   WHERE ev.tenant_id = p_tenant AND ev.category = p_category AND ev.stream_id = p_stream_id
   ORDER BY ev.stream_version DESC LIMIT 1;
  v_current := coalesce(v_current, 0);

  IF p_expected >= 0 AND v_current <> p_expected THEN
    IF eventplane.is_identical_retry(p_tenant, p_category, p_stream_id, p_events) THEN
      RETURN QUERY SELECT * FROM eventplane.stored_rows(p_events);
      RETURN;
    END IF;
    RAISE EXCEPTION 'stream is at version %, expected %', v_current, p_expected
      USING ERRCODE = 'EPWEV', DETAIL = v_current::text;
  END IF;

  -- A plain insert in a subtransaction is cheaper than ON CONFLICT; a
  -- duplicate event id lands in the handler. If the first rows were new and a
  -- later one collides, the retry cannot be identical, so the raise below
  -- discards the rows already returned with the whole statement.
  BEGIN
    RETURN QUERY
      INSERT INTO eventplane.events AS ev (event_id, tenant_id, kind, category, stream_id, stream_version, type,
                                           schema_version, data, correlation_id, causation_id, caused_by, occurred_at)
      SELECT x.event_id, p_tenant, x.kind, p_category, p_stream_id, v_current + x.ord, x.type,
             x.schema_version, x.data, x.correlation_id, x.causation_id, x.caused_by, x.occurred_at
        FROM ROWS FROM (jsonb_to_recordset(p_events) AS (event_id uuid, kind text, type text, schema_version smallint,
               data jsonb, correlation_id uuid, causation_id uuid, caused_by text, occurred_at timestamptz))
             WITH ORDINALITY AS x(event_id, kind, type, schema_version, data, correlation_id, causation_id,
                                  caused_by, occurred_at, ord)
       ORDER BY x.ord
      RETURNING ev.event_id, ev.stream_version, ev.global_position, ev.tx_id, ev.recorded_at, false;
  EXCEPTION WHEN unique_violation THEN
    GET STACKED DIAGNOSTICS v_constraint = CONSTRAINT_NAME;
    IF v_constraint <> 'events_event_id_key' THEN
      RAISE;
    END IF;
    IF eventplane.is_identical_retry(p_tenant, p_category, p_stream_id, p_events) THEN
      RETURN QUERY SELECT * FROM eventplane.stored_rows(p_events);
      RETURN;
    END IF;
    SELECT (e ->> 'event_id')::uuid INTO v_conflict FROM jsonb_array_elements(p_events) e
     WHERE EXISTS (SELECT 1 FROM eventplane.events ev WHERE ev.event_id = (e ->> 'event_id')::uuid)
     LIMIT 1;
    RAISE EXCEPTION 'event id % is already stored with different content', coalesce(v_conflict::text, '(in another tenant)')
      USING ERRCODE = 'EPIDC', DETAIL = coalesce(v_conflict::text, '?');
  END;
END $$;

-- Whether every event of p_events is already stored, identically, in this stream.
CREATE OR REPLACE FUNCTION eventplane.is_identical_retry(
  p_tenant text, p_category text, p_stream_id text, p_events jsonb)
RETURNS boolean LANGUAGE sql STABLE AS $$
  SELECT count(*) = jsonb_array_length(p_events)
    FROM jsonb_to_recordset(p_events) AS x(event_id uuid, kind text, type text, schema_version smallint,
           data jsonb, correlation_id uuid, causation_id uuid, caused_by text, occurred_at timestamptz)
    JOIN eventplane.events ev ON ev.event_id = x.event_id
   WHERE ev.tenant_id = p_tenant AND ev.category = p_category AND ev.stream_id = p_stream_id
     AND ev.kind = x.kind AND ev.type = x.type AND ev.schema_version = x.schema_version
     AND ev.data = x.data AND ev.correlation_id = x.correlation_id
     AND ev.causation_id IS NOT DISTINCT FROM x.causation_id
     AND ev.caused_by = x.caused_by AND ev.occurred_at = x.occurred_at
$$;

-- The stored rows of an identical retry, in stream order.
CREATE OR REPLACE FUNCTION eventplane.stored_rows(p_events jsonb)
RETURNS TABLE (event_id uuid, stream_version bigint, global_position bigint, tx_id xid8,
               recorded_at timestamptz, replayed boolean)
LANGUAGE sql STABLE AS $$
  SELECT ev.event_id, ev.stream_version, ev.global_position, ev.tx_id, ev.recorded_at, true
    FROM eventplane.events ev
   WHERE ev.event_id IN (SELECT (e ->> 'event_id')::uuid FROM jsonb_array_elements(p_events) e)
   ORDER BY ev.stream_version
$$;

-- Tenant-scoped reads in one round trip: the tenant is set for this statement's
-- transaction only, so nothing leaks to the next user of a pooled connection.
CREATE OR REPLACE FUNCTION eventplane.read_stream(
  p_tenant text, p_category text, p_stream_id text, p_from bigint, p_backward boolean, p_limit int)
RETURNS SETOF eventplane.events LANGUAGE plpgsql AS $$
BEGIN
  PERFORM set_config('eventplane.tenant', p_tenant, true);
  IF p_backward THEN
    RETURN QUERY SELECT * FROM eventplane.events e
      WHERE e.tenant_id = p_tenant AND e.category = p_category AND e.stream_id = p_stream_id
        AND e.stream_version <= p_from ORDER BY e.stream_version DESC LIMIT p_limit;
  ELSE
    RETURN QUERY SELECT * FROM eventplane.events e
      WHERE e.tenant_id = p_tenant AND e.category = p_category AND e.stream_id = p_stream_id
        AND e.stream_version >= p_from ORDER BY e.stream_version LIMIT p_limit;
  END IF;
END $$;

-- The gap-safe global read for one tenant: rows after the checkpoint whose
-- transaction is older than every transaction still running, in (tx_id, position) order.
CREATE OR REPLACE FUNCTION eventplane.read_all_for_tenant(
  p_tenant text, p_after_tx xid8, p_after_position bigint, p_limit int)
RETURNS SETOF eventplane.events LANGUAGE plpgsql AS $$
BEGIN
  PERFORM set_config('eventplane.tenant', p_tenant, true);
  RETURN QUERY SELECT * FROM eventplane.events e
    WHERE (e.tx_id, e.global_position) > (p_after_tx, p_after_position)
      AND e.tx_id < pg_snapshot_xmin(pg_current_snapshot()) AND e.tenant_id = p_tenant
    ORDER BY e.tx_id, e.global_position LIMIT p_limit;
END $$;

CREATE OR REPLACE FUNCTION eventplane.read_correlation(p_tenant text, p_correlation_id uuid, p_limit int)
RETURNS SETOF eventplane.events LANGUAGE plpgsql AS $$
BEGIN
  PERFORM set_config('eventplane.tenant', p_tenant, true);
  RETURN QUERY SELECT * FROM eventplane.events e
    WHERE e.tenant_id = p_tenant AND e.correlation_id = p_correlation_id
    ORDER BY e.tx_id, e.global_position LIMIT p_limit;
END $$;

ALTER FUNCTION eventplane.append_to_stream(text, text, text, bigint, jsonb) OWNER TO eventplane_owner;
ALTER FUNCTION eventplane.is_identical_retry(text, text, text, jsonb) OWNER TO eventplane_owner;
ALTER FUNCTION eventplane.stored_rows(jsonb) OWNER TO eventplane_owner;
ALTER FUNCTION eventplane.read_stream(text, text, text, bigint, boolean, int) OWNER TO eventplane_owner;
ALTER FUNCTION eventplane.read_all_for_tenant(text, xid8, bigint, int) OWNER TO eventplane_owner;
ALTER FUNCTION eventplane.read_correlation(text, uuid, int) OWNER TO eventplane_owner;
REVOKE ALL ON FUNCTION eventplane.append_to_stream(text, text, text, bigint, jsonb),
  eventplane.is_identical_retry(text, text, text, jsonb), eventplane.stored_rows(jsonb),
  eventplane.read_stream(text, text, text, bigint, boolean, int),
  eventplane.read_all_for_tenant(text, xid8, bigint, int),
  eventplane.read_correlation(text, uuid, int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION eventplane.append_to_stream(text, text, text, bigint, jsonb),
  eventplane.is_identical_retry(text, text, text, jsonb), eventplane.stored_rows(jsonb)
  TO eventplane_intent_writer, eventplane_fact_writer, eventplane_operator;
GRANT EXECUTE ON FUNCTION eventplane.read_stream(text, text, text, bigint, boolean, int),
  eventplane.read_all_for_tenant(text, xid8, bigint, int),
  eventplane.read_correlation(text, uuid, int)
  TO eventplane_intent_writer, eventplane_fact_writer, eventplane_reader, eventplane_relay, eventplane_operator;
