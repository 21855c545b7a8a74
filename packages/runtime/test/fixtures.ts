import type { RecordedEvent } from '@eventplane/core'
import { defineReducerProjection, defineSqlProjection } from '../src/projection/types.ts'

/** Counts events and remembers their types per stream: a double apply shows as a wrong count. */
export const streamCounter = defineReducerProjection({
  name: 'test_stream_counter',
  version: 1,
  initial: () => ({ count: 0, types: [] as string[], lastVersion: 0 }),
  apply: (s, e: RecordedEvent) => ({ count: s.count + 1, types: [...s.types, e.type], lastVersion: e.stream_version }),
  key: (e) => `${e.stream.category}/${e.stream.id}`,
})

/** A SQL projection with its own table (named unqualified: rebuilt in a shadow schema): events per tenant and category. */
export const categoryTotals = defineSqlProjection({
  name: 'test_category_totals',
  version: 1,
  async setup(tx) {
    await tx`create table if not exists test_category_totals (
      tenant_id text not null, category text not null, events bigint not null, last_type text not null,
      primary key (tenant_id, category))`
  },
  async apply(tx, e) {
    await tx`insert into test_category_totals as t (tenant_id, category, events, last_type)
      values (${e.tenant_id}, ${e.stream.category}, 1, ${e.type})
      on conflict (tenant_id, category) do update set events = t.events + 1, last_type = excluded.last_type`
  },
  async drop(tx) {
    await tx`drop table if exists test_category_totals`
  },
  digestQuery: `select tenant_id, category, events::text, last_type from test_category_totals
                 order by tenant_id collate "C", category collate "C"`,
})
