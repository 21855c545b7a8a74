// `node --import tsx --import ./record-loads.ts …`: appends every module URL the process resolves to the file
// named by RECORD_LOADS_FILE (a resolve hook, registered after tsx's, so it sees the final URLs).
import { register } from 'node:module'

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
