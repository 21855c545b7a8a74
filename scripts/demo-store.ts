/**
 * A short demo of the log alone (no NATS): migrate a fresh database, append to
 * two tenants' streams, read back, follow a correlation chain, show that one
 * tenant cannot see the other. Used by `scripts/demo.sh --store-only`.
 */
import { EventFactory } from '@eventplane/core'
import { PgEventStore, ROLES } from '@eventplane/store-pg'
import { createTestDatabase } from '@eventplane/store-pg/testing'

const db = await createTestDatabase('eventplane_demo')
try {
  console.log(`database ${db.name} created and migrated`)
  const intents = new PgEventStore(db.connect(ROLES.intentWriter, 2))
  const facts = new PgEventStore(db.connect(ROLES.factWriter, 2))
  const reader = new PgEventStore(db.connect(ROLES.reader, 2))

  const acme = EventFactory.forTenant('acme', { causedBy: 'user:alice' })
  const web = { tenant: 'acme', category: 'deployment', id: 'web' }
  const create = acme.intent(web, 'create', { image: 'nginx:1.27', replicas: 2 })
  await intents.append(web, [create], { expectedVersion: 'no_stream' })
  const controller = acme.causedBy(create, { causedBy: 'controller:deployments' })
  const scheduled = controller.fact(web, 'scheduled', { replicas: 2 })
  await facts.append(web, [
    scheduled,
    controller.causedBy(scheduled).fact(web, 'status_changed', { status: 'running' }),
  ])

  const globex = EventFactory.forTenant('globex', { causedBy: 'user:bob' })
  const api = { tenant: 'globex', category: 'deployment', id: 'api' }
  await intents.append(api, [globex.intent(api, 'create', { image: 'api:2.0', replicas: 1 })])

  console.log('\nacme/deployment/web:')
  for (const e of await reader.readStreamToArray(web))
    console.log(`  v${e.stream_version} ${e.kind.padEnd(6)} ${e.type}  position ${e.global_position}`)
  console.log(`\ncorrelation ${create.correlation_id}:`)
  for (const e of await reader.readCorrelation('acme', create.correlation_id)) {
    console.log(`  ${e.event_id} ${e.type.padEnd(14)} caused by ${e.causation_id ?? '(root)'}`)
  }
  const leaked = await reader.readStreamToArray({ ...api, tenant: 'acme' })
  console.log(`\nacme reading globex's stream under its own tenant sees ${leaked.length} events`)
} finally {
  await db.drop()
  console.log('demo database dropped')
}
