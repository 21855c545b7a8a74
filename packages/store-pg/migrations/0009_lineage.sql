-- eventplane 0009: lineage within one tenant. Whether a causation id names an
-- event of the given tenant's given correlation chain, as the calling role sees
-- it under row level security: the tenant is set for this statement's
-- transaction only, and the explicit tenant predicate keeps the answer
-- tenant-scoped for cross-tenant roles too. The answer is the same false for an
-- id that does not exist and for one that belongs to another tenant, so a
-- caller learns nothing about other tenants' events. SECURITY INVOKER (the
-- default) on purpose: it must never see more than its caller.
CREATE OR REPLACE FUNCTION eventplane.causation_in_chain(
  p_tenant text, p_causation_id uuid, p_correlation_id uuid)
RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  PERFORM set_config('eventplane.tenant', p_tenant, true);
  RETURN EXISTS (
    SELECT 1 FROM eventplane.events e
     WHERE e.event_id = p_causation_id AND e.tenant_id = p_tenant AND e.correlation_id = p_correlation_id);
END $$;

ALTER FUNCTION eventplane.causation_in_chain(text, uuid, uuid) OWNER TO eventplane_owner;
REVOKE ALL ON FUNCTION eventplane.causation_in_chain(text, uuid, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION eventplane.causation_in_chain(text, uuid, uuid)
  TO eventplane_intent_writer, eventplane_fact_writer, eventplane_reader, eventplane_relay, eventplane_operator;
