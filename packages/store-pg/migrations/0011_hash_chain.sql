-- eventplane 0011: a tamper-evident log (issue 17). Applied by the migration
-- runner (store-pg migrate()); safe to re-apply.
--
-- Every event stores hash = SHA-256(previous hash of its stream || canonical
-- form of the event), the previous hash of a stream's first event being 32
-- zero bytes. The canonical form is the PostgreSQL jsonb text of one object
-- (docs/architecture.md, "The hash chain", says how another tool rebuilds it):
--   {category, causation_id, caused_by, correlation_id, data, event_id, kind,
--    occurred_at (UTC, microseconds, 'YYYY-MM-DDTHH:MI:SS.ffffffZ'),
--    schema_version, stream_id, stream_version, tenant_id, type}
-- Positions, tx ids and recorded_at are not in it: an export imported into
-- another database keeps every hash.
--
-- The hash is set by a BEFORE INSERT row trigger, so whatever inserts (the
-- append functions of 0005/0010, a superuser) gets the server's hash in the
-- same statement and no caller can choose it. The trigger reads the previous
-- event of the stream (earlier rows of the same INSERT are visible to it, in
-- the order the INSERT produces them). A version whose predecessor is not there
-- is chained from the genesis rather than refused: the append functions insert
-- with ON CONFLICT DO NOTHING (0010), so a batch whose first event is a stored
-- duplicate reaches its second event without the first, and must get to the
-- function's own typed IdempotencyConflict (which discards the statement). A
-- superuser who writes such a gap on purpose leaves it for verify to report.
-- An idempotent retry inserts nothing, so its stored hash is returned as is.

ALTER TABLE eventplane.events ADD COLUMN IF NOT EXISTS hash bytea;

-- The canonical form of an event as text (docs/architecture.md): the jsonb
-- text of jsonb_build_object(<the fields above>), written out here in jsonb's
-- key order (shorter keys first, then bytewise) by concatenation, a third of
-- what building the jsonb costs (measured: 26 µs a row). kind, type, category,
-- stream_id and tenant_id are names (letters, digits, _ - :, checked on every
-- append), written between quotes as they are, which is their JSON text;
-- caused_by goes through to_json, which escapes as jsonb prints a string. A
-- test compares this with jsonb_build_object on awkward rows.
CREATE OR REPLACE FUNCTION eventplane.chain_canonical(p_event eventplane.events)
RETURNS text LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT '{"data": ' || p_event.data::text
      || ', "kind": "' || p_event.kind
      || '", "type": "' || p_event.type
      || '", "category": "' || p_event.category
      || '", "event_id": "' || p_event.event_id::text
      || '", "caused_by": ' || pg_catalog.to_json(p_event.caused_by)::text
      || ', "stream_id": "' || p_event.stream_id
      || '", "tenant_id": "' || p_event.tenant_id
      || '", "occurred_at": "'
      || pg_catalog.to_char(p_event.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
      || '", "causation_id": ' || coalesce('"' || p_event.causation_id::text || '"', 'null')
      || ', "correlation_id": "' || p_event.correlation_id::text
      || '", "schema_version": ' || p_event.schema_version::text
      || ', "stream_version": ' || p_event.stream_version::text || '}'
$$;

-- One link: SHA-256(previous hash, or 32 zero bytes, || UTF-8 of the canonical form).
CREATE OR REPLACE FUNCTION eventplane.chain_link(p_prev bytea, p_event eventplane.events)
RETURNS bytea LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT pg_catalog.sha256(coalesce(p_prev, '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea)
         || pg_catalog.convert_to(eventplane.chain_canonical(p_event), 'UTF8'))
$$;

CREATE OR REPLACE FUNCTION eventplane.chain_event() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  v_prev bytea;
BEGIN
  IF NEW.stream_version > 1 THEN
    SELECT e.hash INTO v_prev FROM eventplane.events e
     WHERE e.tenant_id = NEW.tenant_id AND e.category = NEW.category AND e.stream_id = NEW.stream_id
       AND e.stream_version = NEW.stream_version - 1;
  END IF;
  NEW.hash := eventplane.chain_link(v_prev, NEW);
  RETURN NEW;
END $$;

-- Backfill: events written before this migration get their chain, stream by
-- stream in version order (a gap in a stream's versions is chained over, and
-- verify reports it). UPDATE is refused by the append-only trigger; it is
-- switched off for this transaction only (ALTER TABLE holds the table's
-- exclusive lock until the migration commits, so no one else writes meanwhile).
DO $$
DECLARE
  r eventplane.events;
  v_prev bytea;
  v_stream text[];
BEGIN
  IF EXISTS (SELECT 1 FROM eventplane.events WHERE hash IS NULL) THEN
    ALTER TABLE eventplane.events DISABLE TRIGGER events_no_update_delete;
    FOR r IN SELECT * FROM eventplane.events ORDER BY tenant_id, category, stream_id, stream_version LOOP
      IF v_stream IS DISTINCT FROM ARRAY[r.tenant_id, r.category, r.stream_id] THEN
        v_stream := ARRAY[r.tenant_id, r.category, r.stream_id];
        v_prev := NULL;
      END IF;
      IF r.hash IS NULL THEN
        r.hash := eventplane.chain_link(v_prev, r);
        UPDATE eventplane.events SET hash = r.hash WHERE event_id = r.event_id;
      END IF;
      v_prev := r.hash;
    END LOOP;
    ALTER TABLE eventplane.events ENABLE TRIGGER events_no_update_delete;
  END IF;
END $$;

ALTER TABLE eventplane.events ALTER COLUMN hash SET NOT NULL;

DROP TRIGGER IF EXISTS events_chain ON eventplane.events;
CREATE TRIGGER events_chain BEFORE INSERT ON eventplane.events
  FOR EACH ROW EXECUTE FUNCTION eventplane.chain_event();

-- What verify reads: the events of a tenant (or of all tenants the caller may
-- see), or of one stream, in (tenant, category, stream, version) order after a
-- key, with data as jsonb text and occurred_at in the canonical text, so the
-- verifier recomputes every hash from the stored values without trusting any
-- function of this schema. SECURITY INVOKER: row level security decides.
CREATE OR REPLACE FUNCTION eventplane.chain_rows(
  p_tenant text, p_category text, p_stream_id text,
  p_after_tenant text, p_after_category text, p_after_stream text, p_after_version bigint, p_limit int)
RETURNS TABLE (tenant_id text, category text, stream_id text, stream_version bigint, event_id uuid, kind text,
               type text, schema_version smallint, data text, correlation_id uuid, causation_id uuid,
               caused_by text, occurred_at text, hash bytea, global_position bigint, tx_id xid8)
LANGUAGE plpgsql AS $$
BEGIN
  IF p_tenant IS NOT NULL THEN
    PERFORM set_config('eventplane.tenant', p_tenant, true);
  END IF;
  IF p_stream_id IS NOT NULL THEN
    RETURN QUERY SELECT e.tenant_id, e.category, e.stream_id, e.stream_version, e.event_id, e.kind, e.type,
        e.schema_version, e.data::text, e.correlation_id, e.causation_id, e.caused_by,
        to_char(e.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), e.hash, e.global_position, e.tx_id
      FROM eventplane.events e
     WHERE e.tenant_id = p_tenant AND e.category = p_category AND e.stream_id = p_stream_id
       AND e.stream_version > p_after_version
     ORDER BY e.stream_version LIMIT p_limit;
  ELSIF p_tenant IS NOT NULL THEN
    RETURN QUERY SELECT e.tenant_id, e.category, e.stream_id, e.stream_version, e.event_id, e.kind, e.type,
        e.schema_version, e.data::text, e.correlation_id, e.causation_id, e.caused_by,
        to_char(e.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), e.hash, e.global_position, e.tx_id
      FROM eventplane.events e
     WHERE e.tenant_id = p_tenant
       AND (e.category, e.stream_id, e.stream_version) > (p_after_category, p_after_stream, p_after_version)
     ORDER BY e.category, e.stream_id, e.stream_version LIMIT p_limit;
  ELSE
    RETURN QUERY SELECT e.tenant_id, e.category, e.stream_id, e.stream_version, e.event_id, e.kind, e.type,
        e.schema_version, e.data::text, e.correlation_id, e.causation_id, e.caused_by,
        to_char(e.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), e.hash, e.global_position, e.tx_id
      FROM eventplane.events e
     WHERE (e.tenant_id, e.category, e.stream_id, e.stream_version)
           > (p_after_tenant, p_after_category, p_after_stream, p_after_version)
     ORDER BY e.tenant_id, e.category, e.stream_id, e.stream_version LIMIT p_limit;
  END IF;
END $$;

-- A tenant's stream heads at one point of the global order: the newest
-- (tx_id, position) of the tenant that the gap-safe read can return (nothing
-- can be committed before it later), and each stream's last version and hash
-- at or before it. Streams are found by skipping through the stream index one
-- stream at a time (as list_streams does). An empty tenant gives no rows.
CREATE OR REPLACE FUNCTION eventplane.chain_heads(p_tenant text)
RETURNS TABLE (at_tx_id xid8, at_position bigint, category text, stream_id text, stream_version bigint, hash bytea)
LANGUAGE plpgsql AS $$
DECLARE
  v_tx xid8;
  v_pos bigint;
BEGIN
  PERFORM set_config('eventplane.tenant', p_tenant, true);
  SELECT e.tx_id, e.global_position INTO v_tx, v_pos FROM eventplane.events e
   WHERE e.tenant_id = p_tenant AND e.tx_id < pg_snapshot_xmin(pg_current_snapshot())
   ORDER BY e.tx_id DESC, e.global_position DESC LIMIT 1;
  IF v_tx IS NULL THEN
    RETURN;
  END IF;
  RETURN QUERY
    WITH RECURSIVE streams AS (
      (SELECT e.category, e.stream_id FROM eventplane.events e
        WHERE e.tenant_id = p_tenant ORDER BY e.category, e.stream_id LIMIT 1)
      UNION ALL
      SELECT next.category, next.stream_id FROM streams s, LATERAL (
        SELECT e.category, e.stream_id FROM eventplane.events e
         WHERE e.tenant_id = p_tenant AND (e.category, e.stream_id) > (s.category, s.stream_id)
         ORDER BY e.category, e.stream_id LIMIT 1) next
    )
    SELECT v_tx, v_pos, s.category, s.stream_id, last.stream_version, last.hash
      FROM streams s, LATERAL (
        SELECT e.stream_version, e.hash FROM eventplane.events e
         WHERE e.tenant_id = p_tenant AND e.category = s.category AND e.stream_id = s.stream_id
           AND (e.tx_id, e.global_position) <= (v_tx, v_pos)
         ORDER BY e.stream_version DESC LIMIT 1) last;
END $$;

-- The stored hashes of some events of a tenant (exports carry them).
CREATE OR REPLACE FUNCTION eventplane.chain_hashes(p_tenant text, p_event_ids uuid[])
RETURNS TABLE (event_id uuid, hash bytea) LANGUAGE plpgsql AS $$
BEGIN
  PERFORM set_config('eventplane.tenant', p_tenant, true);
  RETURN QUERY SELECT e.event_id, e.hash FROM eventplane.events e
    WHERE e.tenant_id = p_tenant AND e.event_id = ANY (p_event_ids);
END $$;

ALTER FUNCTION eventplane.chain_canonical(eventplane.events) OWNER TO eventplane_owner;
ALTER FUNCTION eventplane.chain_link(bytea, eventplane.events) OWNER TO eventplane_owner;
ALTER FUNCTION eventplane.chain_event() OWNER TO eventplane_owner;
ALTER FUNCTION eventplane.chain_rows(text, text, text, text, text, text, bigint, int) OWNER TO eventplane_owner;
ALTER FUNCTION eventplane.chain_heads(text) OWNER TO eventplane_owner;
ALTER FUNCTION eventplane.chain_hashes(text, uuid[]) OWNER TO eventplane_owner;
REVOKE ALL ON FUNCTION eventplane.chain_event(),
  eventplane.chain_rows(text, text, text, text, text, text, bigint, int),
  eventplane.chain_heads(text), eventplane.chain_hashes(text, uuid[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION eventplane.chain_rows(text, text, text, text, text, text, bigint, int),
  eventplane.chain_heads(text), eventplane.chain_hashes(text, uuid[])
  TO eventplane_reader, eventplane_relay, eventplane_operator;
