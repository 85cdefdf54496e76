// @vitest-environment node
import { describe, expect, it } from 'vitest'
import { formOf, initialValues, paramsFrom, type JsonSchema } from '../src/lib/schemaForm'
// the schemas the API serves (tests/unit/services/web/test_schema_fixtures.py keeps them current)
import schemas from './fixtures/schemas.json'

const loop = formOf(schemas.training_loop as JsonSchema)
const byKey = Object.fromEntries(loop.fields.map((f) => [f.key, f]))

describe('the "Train from annotations" form', () => {
  it('offers the model, the alias, the gate metric and the held-out split', () => {
    expect(byKey['model']).toMatchObject({ kind: 'string', default: 'nuclei' })
    expect(byKey['alias']).toMatchObject({ kind: 'string', default: 'production' })
    expect(byKey['metric']).toMatchObject({ kind: 'enum', default: 'f1@0.5' })
    expect(byKey['metric'].options).toContain('pq')
    expect(byKey['dataset_options.val_fraction']).toMatchObject({ kind: 'number', default: 0.25, min: 0, max: 1 })
    expect(byKey['dataset_options.seed']).toMatchObject({ kind: 'integer', default: 0 })
  })

  it('submits the changed options nested as the API takes them', () => {
    const values = initialValues(loop.fields)
    values['model'] = 'cells'
    values['dataset_options.val_fraction'] = 0.4
    expect(paramsFrom(loop.fields, values)).toEqual({ model: 'cells', dataset_options: { val_fraction: 0.4 } })
  })
})
