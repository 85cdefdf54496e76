import { mount } from '@vue/test-utils'
import { describe, expect, it } from 'vitest'
import SchemaForm from '../src/components/SchemaForm.vue'
import { formOf, initialValues, validate, type JsonSchema } from '../src/lib/schemaForm'
import schemas from './fixtures/schemas.json'

function render(values?: Record<string, unknown>) {
  const { fields, skipped } = formOf(schemas.he_nuclei as JsonSchema)
  const v = values ?? initialValues(fields)
  return mount(SchemaForm, { props: { fields, skipped, values: v, errors: validate(fields, v), idPrefix: 'p' } })
}

describe('SchemaForm', () => {
  it('gives every input a label, the schema bounds and the preset value', () => {
    const wrapper = render()
    const controls = wrapper.findAll('input, select')
    expect(controls.length).toBeGreaterThan(5)
    for (const c of controls) expect(wrapper.find(`label[for="${c.attributes('id')}"]`).exists()).toBe(true)
    const minArea = wrapper.find('#p-overrides-segment_nuclei-min_area')
    expect(minArea.attributes()).toMatchObject({ type: 'number', min: '1', step: '1' })
    expect((minArea.element as HTMLInputElement).value).toBe('40')
    expect(wrapper.findAll('legend').map((l) => l.text())).toEqual(['segment_nuclei', 'measure', 'overlay'])
    expect(wrapper.text()).toContain('Kept as set: overrides.overlay.colour')
  })

  it('shows a bad value’s message in place of the help, tied to the input', () => {
    const { fields } = formOf(schemas.he_nuclei as JsonSchema)
    const wrapper = render({ ...initialValues(fields), 'overrides.segment_nuclei.min_area': '0' })
    const input = wrapper.find('#p-overrides-segment_nuclei-min_area')
    expect(input.attributes('aria-invalid')).toBe('true')
    const help = wrapper.find(`#${input.attributes('aria-describedby')}`)
    expect(help.text()).toBe('Must be at least 1.')
    expect(help.classes()).toContain('bad')
  })

  it('reports each change with the field’s key', async () => {
    const wrapper = render()
    await wrapper.find('#p-overrides-segment_nuclei-sigma').setValue('2')
    await wrapper.find('#p-overrides-measure-stains').setValue('hdab')
    expect(wrapper.emitted('set')).toEqual([
      ['overrides.segment_nuclei.sigma', '2'],
      ['overrides.measure.stains', 'hdab'],
    ])
  })
})
