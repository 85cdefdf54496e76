// A parameter form generated from a JSON Schema (the pydantic schemas the API serves:
// GET /v1/presets, /v1/training-runs/spec): which input each property gets, its bounds
// and default, the message a bad value shows, and the params object to submit.

export type JsonSchema = {
  type?: string | string[]
  title?: string
  description?: string
  default?: unknown
  enum?: unknown[]
  const?: unknown
  anyOf?: JsonSchema[]
  oneOf?: JsonSchema[]
  allOf?: JsonSchema[]
  $ref?: string
  $defs?: Record<string, JsonSchema>
  properties?: Record<string, JsonSchema>
  required?: string[]
  minimum?: number
  maximum?: number
  exclusiveMinimum?: number
  exclusiveMaximum?: number
  multipleOf?: number
  minLength?: number
  maxLength?: number
  pattern?: string
  [key: string]: unknown
}

export type FieldKind = 'number' | 'integer' | 'boolean' | 'enum' | 'string'

export interface Field {
  /** the property's path from the root, e.g. ['overrides', 'segment_nuclei', 'min_area'] */
  path: string[]
  key: string
  /** the enclosing object's title ('' at the top level): a fieldset legend */
  group: string
  label: string
  description: string
  kind: FieldKind
  required: boolean
  /** null is allowed (an empty input means null, "the default of the server") */
  nullable: boolean
  default: unknown
  options: unknown[]
  min?: number
  max?: number
  /** bounds that exclude themselves (gt / lt) */
  exclusiveMin?: boolean
  exclusiveMax?: boolean
  /** the input's step: multipleOf, 1 for integers, 'any' otherwise */
  step: number | 'any'
  minLength?: number
  maxLength?: number
  pattern?: string
}

/** What a schema generates: the fields, and the properties no input can edit (arrays,
 * free-form objects), which keep their defaults. */
export interface Form {
  fields: Field[]
  skipped: string[]
}

function resolve(schema: JsonSchema, root: JsonSchema): JsonSchema {
  let s = schema
  for (let i = 0; i < 8 && s.$ref; i++) {
    const name = s.$ref.replace(/^#\/(\$defs|definitions)\//, '')
    const target = (root.$defs ?? (root.definitions as Record<string, JsonSchema> | undefined) ?? {})[name]
    if (!target) break
    const { $ref: _ref, ...rest } = s
    s = { ...target, ...rest }
  }
  if (s.allOf?.length === 1) {
    const { allOf, ...rest } = s
    s = { ...resolve(allOf[0], root), ...rest }
  }
  return s
}

const typeOf = (s: JsonSchema): string | undefined => (Array.isArray(s.type) ? s.type.find((t) => t !== 'null') : s.type)
const isNull = (s: JsonSchema) => s.type === 'null' || (s.enum?.length === 1 && s.enum[0] === null)

/** One variant of a union (anyOf/oneOf): the one matching the default's type, else the
 * first; and whether null is allowed. */
function variant(s: JsonSchema, root: JsonSchema): { schema: JsonSchema; nullable: boolean } {
  const union = s.anyOf ?? s.oneOf
  const nullable = Array.isArray(s.type) ? s.type.includes('null') : false
  if (!union) return { schema: s, nullable }
  const options = union.map((o) => resolve(o, root))
  const real = options.filter((o) => !isNull(o))
  const d = s.default
  const matches = (o: JsonSchema) => {
    if (o.enum) return o.enum.includes(d)
    const t = typeOf(o)
    if (typeof d === 'number') return t === (Number.isInteger(d) ? 'integer' : 'number') || t === 'number'
    return t === typeof d
  }
  const chosen = real.find(matches) ?? real[0] ?? {}
  const { anyOf: _a, oneOf: _o, ...outer } = s
  return { schema: { ...chosen, ...outer }, nullable: nullable || real.length < options.length }
}

function kindOf(s: JsonSchema): FieldKind | null {
  if (s.enum) return 'enum'
  switch (typeOf(s)) {
    case 'integer':
      return 'integer'
    case 'number':
      return 'number'
    case 'boolean':
      return 'boolean'
    case 'string':
      return 'string'
    default:
      return null
  }
}

function labelOf(name: string, s: JsonSchema): string {
  const t = s.title && s.title.replace(/\s+/g, '').toLowerCase() !== name.replace(/_/g, '').toLowerCase() ? s.title : null
  const text = t ?? name.replace(/_/g, ' ')
  return text.charAt(0).toUpperCase() + text.slice(1)
}

function toField(path: string[], group: string, raw: JsonSchema, root: JsonSchema, required: boolean): Field | null {
  const { schema: s, nullable } = variant(resolve(raw, root), root)
  const kind = kindOf(s)
  if (!kind) return null
  const name = path[path.length - 1]
  const field: Field = {
    path,
    key: path.join('.'),
    group,
    label: labelOf(name, s),
    description: s.description ?? '',
    kind,
    required,
    nullable,
    default: s.default ?? (nullable ? null : undefined),
    options: (s.enum ?? []).filter((v) => v !== null),
    step: s.multipleOf ?? (kind === 'integer' ? 1 : 'any'),
  }
  if (s.minimum !== undefined) field.min = s.minimum
  if (s.exclusiveMinimum !== undefined) Object.assign(field, { min: s.exclusiveMinimum, exclusiveMin: true })
  if (s.maximum !== undefined) field.max = s.maximum
  if (s.exclusiveMaximum !== undefined) Object.assign(field, { max: s.exclusiveMaximum, exclusiveMax: true })
  if (s.minLength !== undefined) field.minLength = s.minLength
  if (s.maxLength !== undefined) field.maxLength = s.maxLength
  if (s.pattern !== undefined) field.pattern = s.pattern
  return field
}

/** The form a schema generates: objects with properties become groups (titled by the
 * object's title), every number / integer / boolean / enum / string property a field. */
export function formOf(schema: JsonSchema): Form {
  const fields: Field[] = []
  const skipped: string[] = []
  const walk = (node: JsonSchema, path: string[], group: string) => {
    const s = resolve(node, schema)
    for (const [name, prop] of Object.entries(s.properties ?? {})) {
      const p = resolve(prop, schema)
      const here = [...path, name]
      if (typeOf(p) === 'object' && p.properties) {
        walk(p, here, p.title ?? name)
        continue
      }
      const field = toField(here, group, p, schema, (s.required ?? []).includes(name))
      if (field) fields.push(field)
      else skipped.push(here.join('.'))
    }
  }
  walk(schema, [], '')
  return { fields, skipped }
}

/** The inputs' starting values: each field's default ('' for none). */
export function initialValues(fields: Field[]): Record<string, unknown> {
  return Object.fromEntries(fields.map((f) => [f.key, f.default ?? (f.kind === 'boolean' ? false : '')]))
}

const fmt = (n: number) => String(Number(n.toPrecision(6)))

/** The value an input holds as the API wants it, or the message to show beside it. */
export function parseValue(field: Field, raw: unknown): { value?: unknown; error?: string } {
  const empty = raw === '' || raw === null || raw === undefined
  if (field.kind === 'boolean') return { value: Boolean(raw) }
  if (empty) {
    if (field.nullable) return { value: null }
    if (field.required || field.default === undefined) return { error: 'Required.' }
    return { value: field.default }
  }
  if (field.kind === 'enum') {
    const hit = field.options.find((o) => String(o) === String(raw))
    return hit === undefined ? { error: `Choose one of ${field.options.join(', ')}.` } : { value: hit }
  }
  if (field.kind === 'string') {
    const text = String(raw)
    if (field.minLength !== undefined && text.length < field.minLength) return { error: `At least ${field.minLength} characters.` }
    if (field.maxLength !== undefined && text.length > field.maxLength) return { error: `At most ${field.maxLength} characters.` }
    if (field.pattern && !new RegExp(field.pattern).test(text)) return { error: 'Not in the expected format.' }
    return { value: text }
  }
  const n = typeof raw === 'number' ? raw : Number(String(raw).trim())
  if (!Number.isFinite(n)) return { error: 'Enter a number.' }
  if (field.kind === 'integer' && !Number.isInteger(n)) return { error: 'Enter a whole number.' }
  if (field.min !== undefined && (field.exclusiveMin ? n <= field.min : n < field.min))
    return { error: field.exclusiveMin ? `Must be more than ${fmt(field.min)}.` : `Must be at least ${fmt(field.min)}.` }
  if (field.max !== undefined && (field.exclusiveMax ? n >= field.max : n > field.max))
    return { error: field.exclusiveMax ? `Must be less than ${fmt(field.max)}.` : `Must be at most ${fmt(field.max)}.` }
  return { value: n }
}

/** Every field's message (only those with a problem). */
export function validate(fields: Field[], values: Record<string, unknown>): Record<string, string> {
  const errors: Record<string, string> = {}
  for (const f of fields) {
    const { error } = parseValue(f, values[f.key])
    if (error) errors[f.key] = error
  }
  return errors
}

/** The params to submit: the fields whose value differs from their default, nested by
 * path (so the record keeps what the user changed, and the server's defaults the rest). */
export function paramsFrom(fields: Field[], values: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const f of fields) {
    const { value, error } = parseValue(f, values[f.key])
    if (error || value === undefined || value === f.default) continue
    let node = out
    for (const part of f.path.slice(0, -1)) node = (node[part] ??= {}) as Record<string, unknown>
    node[f.path[f.path.length - 1]] = value
  }
  return out
}
