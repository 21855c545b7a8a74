/**
 * One rebuild in a fresh process, for bench:replay's memory figure: prints
 * `{events, rate, maxRssMb, idleRssMb}` as JSON. EVENTPLANE_BENCH_URL is the
 * projector role's URL of the bench database. bench:replay bundles this file
 * to JavaScript and runs it with plain node, as a deployment runs built
 * packages: under tsx the TypeScript loader alone holds ~65 MB.
 */
import { connectPg } from '@eventplane/store-pg'
import { rebuildProjection } from '@eventplane/runtime'
import { perStream } from './replay-projection.ts'

const idleRssMb = process.memoryUsage().rss / 1024 / 1024
const sql = connectPg(process.env.EVENTPLANE_BENCH_URL!, { max: 4 })
try {
  const r = await rebuildProjection({ projection: perStream, sql, digest: false, restart: true })
  console.log(
    JSON.stringify({ events: r.events, rate: r.rate, maxRssMb: process.resourceUsage().maxRSS / 1024, idleRssMb }),
  )
} finally {
  await sql.end()
}
