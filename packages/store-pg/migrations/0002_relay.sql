-- eventplane 0002: the relay's checkpoint in the gap-safe global order. One row
-- per relay name; the relay writes it only after NATS acked every event up to
-- it, and only from the session that holds the relay's advisory lock. Applied
-- by the migration runner or by hand with `psql -v ON_ERROR_STOP=1 -f`; safe to re-apply.

CREATE TABLE IF NOT EXISTS eventplane.relay_checkpoints (
  name            text        PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9_-]{1,64}$'),
  tx_id           xid8        NOT NULL,
  global_position bigint      NOT NULL CHECK (global_position >= 0),
  updated_at      timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE eventplane.relay_checkpoints OWNER TO eventplane_owner;

REVOKE ALL ON eventplane.relay_checkpoints FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE ON eventplane.relay_checkpoints TO eventplane_relay;
GRANT SELECT ON eventplane.relay_checkpoints TO eventplane_operator;
