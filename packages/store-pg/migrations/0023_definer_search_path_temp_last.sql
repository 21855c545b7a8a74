-- eventplane 0023: the projection functions' search_path names pg_temp last.
-- Applied by the migration runner (store-pg migrate()); safe to re-apply.
--
-- Why: 0012 pinned the four SECURITY DEFINER functions of projection rebuilds
-- (projection_live_generation, projection_rebuild_progress,
-- ensure_projection_shadow, drop_stale_projection_shadows) to
-- `pg_catalog, eventplane`. A search_path that does not name pg_temp searches
-- the caller's temporary schema first for tables (before pg_catalog), so the
-- unqualified pg_namespace of ensure_projection_shadow and
-- drop_stale_projection_shadows was whatever table of that name the caller
-- had made: a projector with a temporary pg_namespace (SELECT granted to the
-- owner) made ensure_projection_shadow report a schema it never created, and
-- chose the names drop_stale_projection_shadows drops. Now they run with
-- `pg_catalog, pg_temp`, as every other SECURITY DEFINER function of the
-- schema (0005, 0007): pg_temp last, searched for nothing the bodies name.
-- Their bodies name every eventplane table with its schema, so nothing else
-- changes. grants.test.ts checks every SECURITY DEFINER function's setting.
ALTER FUNCTION eventplane.projection_live_generation(text) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION eventplane.projection_rebuild_progress(text) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION eventplane.ensure_projection_shadow(text, int) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION eventplane.drop_stale_projection_shadows(text) SET search_path = pg_catalog, pg_temp;
