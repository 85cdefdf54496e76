import { flushPromises, mount } from '@vue/test-utils'
import { createPinia, setActivePinia } from 'pinia'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { Analysis, Study } from '../src/api'
import AnalysesTab from '../src/views/study/AnalysesTab.vue'
import { fakeFetch, json } from './helpers'

const study: Study = {
  id: 's1', name: 'S', description: '', modality: 'histology', status: 'active',
  created_at: '2026-01-01T00:00:00Z', last_activity_at: '2026-01-01T00:00:00Z', my_role: 'analyst',
}
const links = (id: string) => ({ study: { summary: `/v1/x/${id}/summary`, objects: `/v1/x/${id}/objects` }, job: {} })
const analysis: Analysis = {
  id: 'an1', study_id: 's1', kind: 'preset', target: 'he-nuclei', status: 'done', image_ids: ['i1', 'i2', 'i3'],
  object_count: 2, job_id: 'job_1', created_by: 'u1', created_at: '2026-01-01T00:00:00Z',
  images: {
    i1: { state: 'succeeded', object_count: 0, links: links('i1') },
    i2: { state: 'succeeded', object_count: 2, links: links('i2') },
    i3: { state: 'failed', error: { title: 'Bad image', detail: 'the file cannot be decoded' } },
  },
}

describe('AnalysesTab', () => {
  beforeEach(() => setActivePinia(createPinia()))
  afterEach(() => vi.unstubAllGlobals())

  it('offers the measurements of the first image with objects and says why an image failed', async () => {
    const { fetch } = fakeFetch((url) => {
      if (url.startsWith('/v1/studies/s1/analyses?')) return json(200, { items: [analysis] })
      if (url === '/v1/studies/s1/analyses/an1') return json(200, analysis)
      if (url.includes('/summary')) return json(200, { object_count: url.includes('i2') ? 2 : 0 })
      if (url === '/v1/x/i1/objects?format=json') return json(200, [])
      if (url === '/v1/x/i2/objects?format=json') return json(200, [{ label: 1, area_px: 40, eccentricity: 0.5 }, { label: 2, area_px: 60, eccentricity: 0.2 }])
      if (url.startsWith('/v1/studies/s1/images')) return json(200, { items: [], total: 0, limit: 500, offset: 0 })
      if (url.startsWith('/v1/studies/s1/patients')) return json(200, { items: [] })
    })
    vi.stubGlobal('fetch', fetch)
    const wrapper = mount(AnalysesTab, {
      props: { study, names: { i1: 'empty.png', i2: 'cells.png', i3: 'broken.png' } },
      global: { stubs: { RouterLink: true, MeasurementBoxPlot: true } },
    })
    await flushPromises()
    const options = wrapper.findAll('#hist-column option').map((o) => o.text())
    expect(options).toContain('area_px')
    expect(options).toContain('eccentricity')
    const failed = wrapper.findAll('tbody tr').find((r) => r.text().includes('broken.png'))!
    expect(failed.text()).toContain('the file cannot be decoded')
  })
})
