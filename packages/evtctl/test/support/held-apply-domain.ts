import { defineDomain, defineSqlProjection } from '@eventplane/runtime'

/** The advisory lock a test holds (exclusively) to make the projection's apply wait inside its commit transaction. */
export const APPLY_LOCK = 72_515

/**
 * The domain of the terminated-session process test: one SQL projection,
 * `held_apply`, whose apply first takes {@link APPLY_LOCK} shared (so it
 * waits only while a test holds it) and records each event's applies, so a
 * second apply of one event shows as `applied = 2`.
 */
export default defineDomain({
  name: 'held_apply',
  projections: [
    defineSqlProjection({
      name: 'held_apply',
      version: 1,
      setup: (tx) =>
        tx`create table if not exists held_apply (event_id text primary key, applied int not null)`.then(() => {}),
      async apply(tx, e) {
        await tx`select pg_advisory_xact_lock_shared(${APPLY_LOCK})`
        await tx`insert into held_apply (event_id, applied) values (${e.event_id}, 1)
                 on conflict (event_id) do update set applied = held_apply.applied + 1`
      },
      drop: (tx) => tx`drop table if exists held_apply`.then(() => {}),
      digestQuery: 'select event_id, applied from held_apply order by event_id',
    }),
  ],
})
