// `pnpm bench:nkeys [-- --rounds N]`: what the auth dir's Ed25519 work costs, @nats-io/nkeys (tweetnacl, plain
// JavaScript: the baseline) against bus-nats' nkeys (node:crypto), in the same process, alternating by round:
// making a key, loading a seed with its public key, signing a JWT-sized message, and a whole creds login (the
// server nonce signed, as each connect and reconnect does). Prints the median ms per operation and the ratio.
import { parseArgs } from 'node:util'
import * as nkeys from '@nats-io/nkeys'
import { credsAuthenticator as natsCredsAuthenticator } from '@nats-io/transport-node'
import { userCreds } from '../../packages/bus-nats/src/nats-config/claims.ts'
import * as ours from '../../packages/bus-nats/src/nkeys.ts'

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '7' } } })
const rounds = Number(values.rounds)
const OPS = 20

const creds = await userCreds('relay', ours.createAccount())
const message = new Uint8Array(600).fill(7)
type Impl = { create(): nkeys.KeyPair; fromSeed(s: Uint8Array): nkeys.KeyPair; login(nonce: string): unknown }
const impls: Record<'tweetnacl' | 'node:crypto', Impl> = {
  tweetnacl: { create: nkeys.createAccount, fromSeed: nkeys.fromSeed, login: (n) => natsCredsAuthenticator(creds)(n) },
  'node:crypto': {
    create: ours.createAccount,
    fromSeed: ours.fromSeed,
    login: (n) => ours.credsAuthenticator(creds)(n),
  },
}
const seed = nkeys.createAccount().getSeed()
const work: Record<string, (impl: Impl) => void> = {
  'make a key (and read its public key)': (impl) => void impl.create().getPublicKey(),
  'load a seed and read its public key': (impl) => void impl.fromSeed(seed).getPublicKey(),
  'sign 600 bytes (a JWT) with a loaded key': (impl) => void impl.fromSeed(seed).sign(message),
  'a creds login (parse, sign the nonce)': (impl) => void impl.login('a-server-nonce-1234567890'),
}

const samples = new Map<string, number[]>()
for (let round = 0; round < rounds; round++) {
  for (const [op, run] of Object.entries(work)) {
    for (const [name, impl] of Object.entries(impls)) {
      const started = process.hrtime.bigint()
      for (let i = 0; i < OPS; i++) run(impl)
      const ms = Number(process.hrtime.bigint() - started) / 1e6 / OPS
      samples.set(`${op}|${name}`, [...(samples.get(`${op}|${name}`) ?? []), ms])
    }
  }
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
console.log(`node ${process.version}, ${rounds} rounds of ${OPS} operations each, alternating\n`)
console.log('| operation | tweetnacl ms | node:crypto ms | node:crypto ÷ tweetnacl |')
console.log('| --- | --- | --- | --- |')
for (const op of Object.keys(work)) {
  const [slow, fast] = [median(samples.get(`${op}|tweetnacl`)!), median(samples.get(`${op}|node:crypto`)!)]
  console.log(`| ${op} | ${slow.toFixed(2)} | ${fast.toFixed(3)} | ${(fast / slow).toFixed(3)} |`)
}
