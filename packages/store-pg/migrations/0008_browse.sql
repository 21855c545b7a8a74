-- eventplane 0008: browsing the log. Listing a tenant's streams with their
-- versions, and reading one category of a tenant in the gap-safe global order,
-- paged by checkpoint. Both set the tenant for their own statement only (like
-- read_stream), so row level security scopes them; neither needs an index of
-- its own. Applied by the migration runner (store-pg migrate()); safe to re-apply.

-- A tenant's streams after (p_after_category, p_after_stream) in (category, id)
-- order, each with its last version, type and time. Distinct streams are found
-- by skipping through the (tenant, category, stream, version) index one stream
-- at a time, so a page costs one index probe per stream, not a scan of the events.
CREATE OR REPLACE FUNCTION eventplane.list_streams(
  p_tenant text, p_category text, p_after_category text, p_after_stream text, p_limit int)
RETURNS TABLE (category text, stream_id text, stream_version bigint, last_type text, last_recorded_at timestamptz)
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM set_config('eventplane.tenant', p_tenant, true);
  RETURN QUERY
    WITH RECURSIVE streams AS (
      (SELECT e.category, e.stream_id FROM eventplane.events e
        WHERE e.tenant_id = p_tenant AND (p_category IS NULL OR e.category = p_category)
          AND (e.category, e.stream_id) > (p_after_category, p_after_stream)
        ORDER BY e.category, e.stream_id LIMIT 1)
      UNION ALL
      SELECT next.category, next.stream_id FROM streams s, LATERAL (
        SELECT e.category, e.stream_id FROM eventplane.events e
         WHERE e.tenant_id = p_tenant AND (p_category IS NULL OR e.category = p_category)
           AND (e.category, e.stream_id) > (s.category, s.stream_id)
         ORDER BY e.category, e.stream_id LIMIT 1) next
    )
    SELECT s.category, s.stream_id, last.stream_version, last.type, last.recorded_at
      FROM (SELECT * FROM streams LIMIT p_limit) s, LATERAL (
        SELECT e.stream_version, e.type, e.recorded_at FROM eventplane.events e
         WHERE e.tenant_id = p_tenant AND e.category = s.category AND e.stream_id = s.stream_id
         ORDER BY e.stream_version DESC LIMIT 1) last
     ORDER BY s.category, s.stream_id;
END $$;

-- One category of one tenant after a checkpoint, in the gap-safe global order
-- (rows of transactions older than every running one, by (tx_id, position)):
-- a page boundary never skips a transaction that commits late.
CREATE OR REPLACE FUNCTION eventplane.read_category(
  p_tenant text, p_category text, p_after_tx xid8, p_after_position bigint, p_limit int)
RETURNS SETOF eventplane.events LANGUAGE plpgsql AS $$
BEGIN
  PERFORM set_config('eventplane.tenant', p_tenant, true);
  RETURN QUERY SELECT * FROM eventplane.events e
    WHERE (e.tx_id, e.global_position) > (p_after_tx, p_after_position)
      AND e.tx_id < pg_snapshot_xmin(pg_current_snapshot())
      AND e.tenant_id = p_tenant AND e.category = p_category
    ORDER BY e.tx_id, e.global_position LIMIT p_limit;
END $$;

ALTER FUNCTION eventplane.list_streams(text, text, text, text, int) OWNER TO eventplane_owner;
ALTER FUNCTION eventplane.read_category(text, text, xid8, bigint, int) OWNER TO eventplane_owner;
REVOKE ALL ON FUNCTION eventplane.list_streams(text, text, text, text, int),
  eventplane.read_category(text, text, xid8, bigint, int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION eventplane.list_streams(text, text, text, text, int),
  eventplane.read_category(text, text, xid8, bigint, int)
  TO eventplane_intent_writer, eventplane_fact_writer, eventplane_reader, eventplane_relay, eventplane_operator;
