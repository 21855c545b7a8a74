// `node --import tsx --import ./record-loads.ts …`: appends every module URL the process resolves to the file
// named by RECORD_LOADS_FILE (a resolve hook, registered after tsx's, so it sees the final URLs), and at exit the
// CommonJS modules it loaded (`require`, createRequire: node 20 does not pass them through resolve hooks).
import { appendFileSync } from 'node:fs'
import { createRequire, register } from 'node:module'
import { pathToFileURL } from 'node:url'

const hooks = `
import { appendFileSync } from 'node:fs'
let file
export function initialize(data) { file = data.file }
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context)
  appendFileSync(file, result.url + '\\n')
  return result
}`
register(`data:text/javascript,${encodeURIComponent(hooks)}`, { data: { file: process.env.RECORD_LOADS_FILE } })
process.on('exit', () => {
  const required = Object.keys(createRequire(import.meta.url).cache).map((path) => pathToFileURL(path).href)
  appendFileSync(process.env.RECORD_LOADS_FILE!, required.map((url) => `${url}\n`).join(''))
})
