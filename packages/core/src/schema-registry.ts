import type { TSchema } from '@sinclair/typebox'
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler'
import { SchemaViolation, UnknownSchema } from './errors.ts'
import { validateType } from './names.ts'

/** Maps `type` + `schema_version` to a compiled TypeBox validator. */
export class SchemaRegistry {
  readonly #checks = new Map<string, TypeCheck<TSchema>>()

  /** Registers a schema; registering the same type and version twice is an error. */
  register(type: string, version: number, schema: TSchema): this {
    validateType(type)
    if (!Number.isInteger(version) || version < 1) throw new RangeError(`schema version must be a positive integer`)
    const key = `${type}@${version}`
    if (this.#checks.has(key)) throw new Error(`schema ${key} is already registered`)
    this.#checks.set(key, TypeCompiler.Compile(schema))
    return this
  }

  has(type: string, version: number): boolean {
    return this.#checks.has(`${type}@${version}`)
  }

  /** Every registered `type@version`, sorted. */
  list(): string[] {
    return [...this.#checks.keys()].sort()
  }

  /** Throws `UnknownSchema` or `SchemaViolation` unless `data` matches. */
  validate(type: string, version: number, data: unknown): void {
    const check = this.#checks.get(`${type}@${version}`)
    if (!check) throw new UnknownSchema(type, version)
    if (!check.Check(data)) {
      const errors = [...check.Errors(data)].slice(0, 5).map((e) => `${e.path || '/'}: ${e.message}`)
      throw new SchemaViolation(type, version, errors)
    }
  }
}
