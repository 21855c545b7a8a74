/**
 * connectTenantAdmin leaves nothing open when it fails (mutation audit 2026-12-02, mutrand2): its system
 * connection was closed only when the operator's connect was refused, not when its creds file could not be
 * read (thrown before the refusal's handler was attached), and dropping the close went unseen.
 */
import assert from 'node:assert/strict'
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { connectTenantAdmin, loadAuthDir, serviceCredsFile } from '../src/nats-config/index.ts'
import { type TestNatsServer, startNatsServer } from '../src/testing/index.ts'

describe('connectTenantAdmin', () => {
  let server: TestNatsServer
  let dir: string

  before(async () => {
    server = await startNatsServer({ tenants: [], monitoring: true })
    dir = mkdtempSync(join(tmpdir(), 'ep-admin-connect-'))
  })
  after(async () => {
    await server?.stop()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  /** The names of the server's open client connections, from its monitoring endpoint (`/connz`). */
  const openNames = async (): Promise<string[]> => {
    const res = await fetch(`${server.monitorUrl}/connz?limit=1024`)
    const body = (await res.json()) as { connections?: { name?: string }[] }
    return (body.connections ?? []).map((c) => c.name ?? '')
  }

  test('the operator creds unreadable: it fails, and the system connection it opened first is closed', async () => {
    // The auth dir as it is, but for the operator's creds file: the system user connects, the operator cannot.
    const auth = { ...loadAuthDir(server.authDir!), dir }
    mkdirSync(join(dir, 'creds'))
    copyFileSync(serviceCredsFile(server.authDir!, 'system'), serviceCredsFile(dir, 'system'))
    await assert.rejects(connectTenantAdmin(auth, server.url), /ENOENT/)
    const deadline = Date.now() + 5000
    let names = await openNames()
    while (names.includes('eventplane-tenant-admin:system') && Date.now() < deadline) {
      await new Promise((r) => setImmediate(r))
      names = await openNames()
    }
    assert.deepEqual(
      names.filter((n) => n.startsWith('eventplane-tenant-admin:')),
      [],
      'no admin connection left open',
    )
  })
})
