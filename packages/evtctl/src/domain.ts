import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { EventplaneError } from '@eventplane/core'
import { CliError } from './cli-error.ts'
import { type Controller, type Domain, InvalidDomain, type Projection, isDomain } from '@eventplane/runtime'
import { isDomainPath } from './config.ts'

const notFound = (e: unknown): boolean =>
  (e as NodeJS.ErrnoException | undefined)?.code === 'ERR_MODULE_NOT_FOUND' ||
  (e as NodeJS.ErrnoException | undefined)?.code === 'MODULE_NOT_FOUND'

/**
 * Imports a domain module: a file path (resolved against `cwd`) or a package
 * name (resolved as evtctl's own imports are, then from `cwd`, so a package
 * installed beside evtctl or in the working directory's project is found).
 * Its default export, or its export named `domain`, must be a domain built by
 * `defineDomain`. A missing module is `cli.config`; a module that is not a
 * valid domain, or fails while loading, is `runtime.invalid_domain`; one line each.
 */
export async function loadDomain(spec: string, cwd: string): Promise<Domain> {
  let module: Record<string, unknown>
  try {
    module = isDomainPath(spec) ? await importFile(resolve(cwd, spec)) : await importPackage(spec, cwd)
  } catch (e) {
    if (e instanceof EventplaneError) throw e
    throw domainLoadFailure(spec, e)
  }
  for (const candidate of [module.default, module.domain]) if (isDomain(candidate)) return candidate
  throw new InvalidDomain(
    `${spec} is not a domain: export default defineDomain({ name, schemas, controllers, projections }) from @eventplane/runtime`,
  )
}

/**
 * The one line for a domain module that failed while loading. A `.ts` file given to a Node without a TypeScript
 * loader (the installed evtctl runs plain node on its build; Node 20 has none) says to compile it, instead of
 * Node's `Unknown file extension ".ts"`.
 */
export function domainLoadFailure(spec: string, e: unknown): InvalidDomain {
  if (/\.[cm]?ts$/.test(spec) && (e as NodeJS.ErrnoException | undefined)?.code === 'ERR_UNKNOWN_FILE_EXTENSION')
    return new InvalidDomain(
      `domain module ${spec} is TypeScript, which this Node (${process.version}) does not load: compile it ` +
        '(npx tsc) and pass the .js file',
      { cause: e },
    )
  const first = (e instanceof Error ? e.message : String(e)).split('\n')[0]
  return new InvalidDomain(`domain module ${spec} failed to load: ${first}`, { cause: e })
}

async function importFile(path: string): Promise<Record<string, unknown>> {
  if (!existsSync(path)) throw new CliError('cli.config', `domain module ${path} not found`)
  return import(pathToFileURL(path).href)
}

async function importPackage(spec: string, cwd: string): Promise<Record<string, unknown>> {
  try {
    return await import(spec)
  } catch (e) {
    // Only "this package is not here" falls through; a package that is found but fails is reported as it is.
    if (!notFound(e) || !String((e as Error).message).includes(`'${spec}'`)) throw e
  }
  let file: string
  try {
    file = createRequire(join(cwd, 'package.json')).resolve(spec)
  } catch (e) {
    if (!notFound(e)) throw e
    throw new CliError('cli.config', `domain package ${spec} is not installed (looked from ${cwd})`)
  }
  return import(pathToFileURL(file).href)
}

/** A projection of `domain` by name; an unknown name is `runtime.unknown_projection` (exit 1) naming the known ones. */
export function findProjection(domain: Domain, name: string): Projection {
  const found = domain.find(name)
  if (found?.kind === 'projection') return found.projection
  const known = domain.projections.map((p) => p.name).join(', ') || '(none)'
  throw new EventplaneError(
    'runtime.unknown_projection',
    `unknown projection ${JSON.stringify(name)} in domain ${domain.name}; known: ${known}`,
  )
}

/** What `subscribe <name>` runs: a projection or a controller. */
export type Runnable = { kind: 'projection'; projection: Projection } | { kind: 'controller'; controller: Controller }

/** A projection or controller of `domain` by name; unknown names are `runtime.unknown_projection` (exit 1). */
export function findRunnable(domain: Domain, name: string): Runnable {
  const found = domain.find(name)
  if (found) return found
  const known = [...domain.projections, ...domain.controllers].map((p) => p.name).join(', ') || '(none)'
  throw new EventplaneError(
    'runtime.unknown_projection',
    `no projection or controller named ${JSON.stringify(name)} in domain ${domain.name}; known: ${known}`,
  )
}
