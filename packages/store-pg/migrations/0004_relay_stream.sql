-- eventplane 0004: which JetStream stream a relay checkpoint refers to. The
-- relay records the stream's `created` timestamp (JetStream's own text form,
-- nanoseconds kept) with every checkpoint; when it later finds a stream with
-- another `created` (an operator deleted it and it was recreated), the
-- checkpoint means nothing there, so the relay resets it to the start and
-- republishes the whole log. NULL on rows written before this migration.
-- Applied by the migration runner or by hand with `psql -v ON_ERROR_STOP=1 -f`;
-- safe to re-apply.

ALTER TABLE eventplane.relay_checkpoints ADD COLUMN IF NOT EXISTS stream_created text;
