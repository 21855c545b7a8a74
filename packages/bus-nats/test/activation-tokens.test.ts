/**
 * The log account's exports need an activation token (mutation sweep 2026-12-01, `claims.ts`
 * `logAccountExports`): an account can import only what the log account signed for it, whatever its own JWT
 * claims. A rogue account JWT (signed by the operator, as a mistaken or tampered tenant JWT would be) that
 * lists globex's submit subjects and log subjects without a token gets neither. (One with a token signed for
 * another account is refused by nats-server itself when it is pushed.)
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { type Import, encodeAccount, encodeActivation } from '@nats-io/jwt'
import { type KeyPair, createAccount } from '@nats-io/nkeys'
import { type NatsConnection, RequestError, connect, credsAuthenticator } from '@nats-io/transport-node'
import { SYSTEM_USER, userCreds } from '../src/nats-config/claims.ts'
import { loadAuthDir, pushAccountJwt } from '../src/nats-config/index.ts'
import { logFilter, logSubject, submitSubject } from '../src/subjects.ts'
import { type TestNatsServer, startNatsServer } from '../src/testing/index.ts'

describe("the log account's exports are imported only with an activation token for the importing account", () => {
  let server: TestNatsServer
  let gateway: NatsConnection
  const opened: NatsConnection[] = []
  const globexSubmit = 'eventplane-api.submit.globex.>'
  const globexLog = logFilter({ tenant: 'globex' })

  before(async () => {
    server = await startNatsServer({ tenants: ['acme', 'globex'] })
    // A stand-in gateway: any submit request that reaches the log account is answered.
    gateway = await server.connect('gateway')
    gateway.subscribe('eventplane-api.submit.>', { callback: (_err, m) => void m.respond('{"served":true}') })
    await gateway.flush()
  })
  after(async () => {
    for (const nc of opened) await nc.close().catch(() => {})
    await server?.stop()
  })

  /** A new account with `imports` (each given its token, if any, by `token`), pushed, and a user of it connected. */
  const rogueAccount = async (
    name: string,
    token: (account: KeyPair, subject: string, type: 'service' | 'stream') => Promise<string | undefined>,
  ): Promise<NatsConnection> => {
    const auth = loadAuthDir(server.authDir!)
    const account = createAccount()
    const logAccount = auth.log.getPublicKey()
    const imports: Import[] = []
    for (const [subject, type] of [
      [globexSubmit, 'service'],
      [globexLog, 'stream'],
    ] as const) {
      const t = await token(account, subject, type)
      imports.push({ name: subject, subject, account: logAccount, type, ...(t === undefined ? {} : { token: t }) })
    }
    // Unlimited core limits, as a tenant account has them (Go's JWT reads a missing limit as 0).
    const limits = { subs: -1, data: -1, payload: -1, imports: -1, exports: 0, wildcards: true, conn: -1 }
    const jwt = await encodeAccount(name, account, { imports, limits }, { signer: auth.operator })
    const system = await server.connect(SYSTEM_USER)
    await pushAccountJwt(system, jwt)
    const nc = await connect({ servers: server.url, authenticator: credsAuthenticator(await userCreds(name, account)) })
    opened.push(nc)
    return nc
  }

  /** What a user of the account gets: an answer from the stand-in gateway, and globex's live log. */
  const reaches = async (nc: NatsConnection): Promise<{ submit: boolean; log: boolean }> => {
    const tail = nc.subscribe(globexLog)
    await nc.flush()
    // The account was pushed before the user connected: its imports are in place.
    const submit = await nc.request(submitSubject('globex', 'x', 'y'), '{}', { timeout: 2000 }).then(
      () => true,
      (e: unknown) => {
        if (e instanceof RequestError && e.isNoResponders()) return false
        throw e
      },
    )
    const relay = await server.connect('relay')
    relay.publish(logSubject('fact', 'globex', 'x', 'y'), '{}')
    // Once the server answered the relay's ping it has routed the publish; once it answers ours, whatever it
    // routed to this connection before arrived ahead of the answer.
    await relay.flush()
    await nc.flush()
    return { submit, log: tail.getReceived() > 0 }
  }

  test('an import listed without a token reaches nothing of the log account', async () => {
    const nc = await rogueAccount('rogue-untokened', async () => undefined)
    assert.deepEqual(await reaches(nc), { submit: false, log: false })
  })

  test('the same imports with tokens signed for the account are served (the probe sees an import that works)', async () => {
    const auth = loadAuthDir(server.authDir!)
    const nc = await rogueAccount('signed', (account, subject, type) =>
      encodeActivation('signed', account.getPublicKey(), auth.log, type, { subject }),
    )
    assert.deepEqual(await reaches(nc), { submit: true, log: true })
  })
})
