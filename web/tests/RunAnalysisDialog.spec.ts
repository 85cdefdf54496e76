import { flushPromises, mount } from '@vue/test-utils'
import { describe, expect, it, vi } from 'vitest'
import type { Analysis, Job } from '../src/api'
import RunAnalysisDialog from '../src/components/RunAnalysisDialog.vue'
import { fakeFetch, FakeEventSource, json, settle, stubEventSource } from './helpers'

const job: Job = {
  id: 'job_1', kind: 'analysis', state: 'running', inputs: ['i1', 'i2'], params: {},
  progress: { total: 2, succeeded: 0, failed: 0, fraction: 0 }, error: null,
  created_at: '2026-01-01T00:00:00Z', finished_at: null,
}
const analysis: Analysis = {
  id: 'an1', study_id: 's1', kind: 'preset', target: 'he-nuclei', status: 'running', image_ids: ['i1', 'i2'],
  object_count: null, job_id: 'job_1', created_by: 'u1', created_at: '2026-01-01T00:00:00Z',
  images: { i1: { state: 'running' }, i2: { state: 'running' } },
}

function server() {
  let reads = 0
  return fakeFetch((url, init) => {
    if (url === '/v1/presets') return json(200, { items: [{ name: 'he-nuclei', ref: 'x', title: 'Nuclei', description: '', params: { type: 'object', properties: {} } }], model_params: {} })
    if (url === '/v1/models') return json(200, { items: [] })
    if (url === '/v1/studies/s1/analyses' && init.method === 'POST') return json(202, analysis)
    if (url === '/v1/jobs/job_1') {
      reads += 1
      return json(200, reads === 1 ? job : { ...job, state: 'failed', error: { title: 'Job failed', detail: 'every image failed' } })
    }
    if (url === '/v1/studies/s1/analyses/an1') {
      return json(200, { ...analysis, status: 'failed', images: { i1: { state: 'failed', error: { detail: 'i1 is not an image' } }, i2: { state: 'succeeded', object_count: 3 } } })
    }
  })
}

describe('RunAnalysisDialog', () => {
  stubEventSource()

  it('runs once on a double click and shows why the job and an image failed', async () => {
    const { fetch, calls } = server()
    vi.stubGlobal('fetch', fetch)
    const wrapper = mount(RunAnalysisDialog, {
      props: { studyId: 's1', imageIds: ['i1', 'i2'], names: { i1: 'a.png', i2: 'b.png' } },
      global: { stubs: { RouterLink: true } },
    })
    await flushPromises()
    const form = wrapper.find('form')
    await form.trigger('submit')
    await form.trigger('submit')
    await flushPromises()
    await settle(20)
    await flushPromises()
    expect(calls.filter((c) => c === 'POST /v1/studies/s1/analyses')).toHaveLength(1)
    expect(wrapper.find('.job-failure').text()).toContain('every image failed')
    const row = wrapper.findAll('.run-results tbody tr').find((r) => r.text().includes('a.png'))!
    expect(row.text()).toContain('i1 is not an image')
    expect(FakeEventSource.opened).toHaveLength(1)
  })
})
