import { spawn } from 'node:child_process'

/** A transaction with an xid held open by a `psql` child (see {@link holdXidInPsql}). */
export interface PsqlXid {
  /** Its backend's pid. */
  pid: number
  /** Rolls it back and ends psql (nothing when psql already ended, e.g. its session was terminated). */
  release(): void
}

/**
 * Opens a transaction that holds an xid on a session of `url`, in a `psql` child, for tests that terminate that
 * session. Not a postgres.js connection: the driver (3.4.9) throws an uncatchable TypeError when a session it holds
 * in a transaction, or reserved, is terminated and then used (its rollback): porsager/postgres#1154, #1208.
 */
export async function holdXidInPsql(url: string): Promise<PsqlXid> {
  const psql = spawn('psql', ['-X', '-q', '-t', '-A', url], { stdio: ['pipe', 'pipe', 'ignore'] })
  const exited = new Promise<number | null>((resolve) => psql.once('exit', resolve))
  psql.stdin.write('begin;\nselect pg_current_xact_id(), pg_backend_pid();\n')
  const pid = await new Promise<number>((resolve, reject) => {
    let out = ''
    psql.stdout.on('data', (d: Buffer) => {
      out += d.toString()
      if (out.includes('\n')) resolve(Number(out.trim().split('|')[1]))
    })
    void exited.then(() => reject(new Error('psql ended before it held an xid')))
  })
  return {
    pid,
    release: () => {
      if (psql.exitCode === null && psql.signalCode === null) psql.stdin.end('rollback;\n')
    },
  }
}
