// @vitest-environment node
import { describe, expect, it } from 'vitest'
import { formOf, initialValues, paramsFrom, parseValue, validate, type JsonSchema } from '../src/lib/schemaForm'
// the schemas the API serves (tests/unit/services/web/test_schema_fixtures.py keeps them current)
import schemas from './fixtures/schemas.json'

const he = formOf(schemas.he_nuclei as JsonSchema)
const byKey = Object.fromEntries(he.fields.map((f) => [f.key, f]))

describe('a form from a preset schema', () => {
  it('groups fields by step, with the preset values as defaults', () => {
    const minArea = byKey['overrides.segment_nuclei.min_area']
    expect(minArea).toMatchObject({ kind: 'integer', group: 'segment_nuclei', default: 40, min: 1, step: 1, label: 'Min area' })
    expect(byKey['overrides.segment_nuclei.sigma']).toMatchObject({ kind: 'number', default: 1.5, min: 0, max: 20, step: 'any' })
    expect(byKey['overrides.segment_nuclei.method'].options).toContain('otsu')
    expect(byKey['overrides.measure.stains']).toMatchObject({ kind: 'enum', default: 'he' })
    expect(he.skipped).toContain('overrides.overlay.colour') // an RGB array: kept as the preset has it
  })

  it('picks the union variant the default belongs to (channel: a stain name, not an index)', () => {
    expect(byKey['overrides.segment_nuclei.channel']).toMatchObject({ kind: 'enum', default: 'hematoxylin' })
  })

  it('submits only what changed, nested by step', () => {
    const values = initialValues(he.fields)
    expect(paramsFrom(he.fields, values)).toEqual({})
    values['overrides.segment_nuclei.min_area'] = 60
    values['overrides.segment_nuclei.split'] = true // not in the form: ignored
    expect(paramsFrom(he.fields, values)).toEqual({ overrides: { segment_nuclei: { min_area: 60 } } })
  })
})

describe('a form from a model analysis schema', () => {
  const model = formOf(schemas.model_params as JsonSchema)
  const f = Object.fromEntries(model.fields.map((x) => [x.key, x]))

  it('makes optional numbers nullable, with exclusive bounds', () => {
    expect(f.threshold).toMatchObject({ kind: 'number', nullable: true, default: null, min: 0, max: 1, exclusiveMin: true, exclusiveMax: true })
    expect(f.max_area).toMatchObject({ kind: 'integer', nullable: true, min: 1 })
  })

  it('says what is wrong with a value', () => {
    expect(parseValue(f.threshold, '1')).toEqual({ error: 'Must be less than 1.' })
    expect(parseValue(f.threshold, 0)).toEqual({ error: 'Must be more than 0.' })
    expect(parseValue(f.threshold, '')).toEqual({ value: null })
    expect(parseValue(f.scale, 9)).toEqual({ error: 'Must be at most 8.' })
    expect(parseValue(f.min_area, 2.5)).toEqual({ error: 'Enter a whole number.' })
    expect(parseValue(f.min_area, 'abc')).toEqual({ error: 'Enter a number.' })
    expect(parseValue(f.scale, '0.5')).toEqual({ value: 0.5 })
    expect(validate(model.fields, { ...initialValues(model.fields), scale: 0 })).toEqual({ scale: 'Must be at least 0.05.' })
  })
})

describe('a form from the training spec', () => {
  const spec = formOf(schemas.train_spec as JsonSchema)
  const f = Object.fromEntries(spec.fields.map((x) => [x.key, x]))

  it('covers numbers, integers, booleans and enums with their bounds', () => {
    expect(f.epochs).toMatchObject({ kind: 'integer', default: 20, min: 1, max: 10000 })
    expect(f.lr).toMatchObject({ kind: 'number', min: 0, exclusiveMin: true, max: 1 })
    expect(f.task).toMatchObject({ kind: 'enum', options: ['segmentation', 'classification', 'graph', 'timelapse'] })
    expect(f.arch).toMatchObject({ kind: 'enum', nullable: true, default: null })
    expect(spec.fields.some((x) => x.kind === 'boolean')).toBe(true)
  })
})

describe('schema shapes', () => {
  it('follows $ref into $defs and skips what no input edits', () => {
    const schema: JsonSchema = {
      type: 'object',
      $defs: { Mode: { enum: ['a', 'b'], type: 'string' } },
      properties: { mode: { $ref: '#/$defs/Mode', default: 'b' }, names: { type: 'array', items: { type: 'string' } }, on: { type: 'boolean', default: false } },
      required: ['mode'],
    }
    const form = formOf(schema)
    expect(form.fields.map((x) => [x.key, x.kind, x.required])).toEqual([
      ['mode', 'enum', true],
      ['on', 'boolean', false],
    ])
    expect(form.skipped).toEqual(['names'])
    expect(parseValue(form.fields[0], 'c')).toEqual({ error: 'Choose one of a, b.' })
    expect(paramsFrom(form.fields, { mode: 'a', on: true })).toEqual({ mode: 'a', on: true })
  })

  it('checks string lengths and patterns', () => {
    const [name] = formOf({ type: 'object', properties: { name: { type: 'string', minLength: 2, maxLength: 4, pattern: '^[a-z]+$' } }, required: ['name'] }).fields
    expect(parseValue(name, '')).toEqual({ error: 'Required.' })
    expect(parseValue(name, 'a')).toEqual({ error: 'At least 2 characters.' })
    expect(parseValue(name, 'abcde')).toEqual({ error: 'At most 4 characters.' })
    expect(parseValue(name, 'AB')).toEqual({ error: 'Not in the expected format.' })
  })
})
