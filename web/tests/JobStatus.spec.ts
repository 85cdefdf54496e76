import { mount } from '@vue/test-utils'
import { describe, expect, it, vi } from 'vitest'
import { defineComponent, h, ref } from 'vue'
import type { Job } from '../src/api'
import JobStatus from '../src/components/JobStatus.vue'
import { fakeFetch, FakeEventSource, json, settle, stubEventSource } from './helpers'

const running: Job = {
  id: 'job_1',
  kind: 'analysis',
  state: 'running',
  inputs: ['a'],
  params: {},
  progress: { total: 2, succeeded: 1, failed: 0, fraction: 0.5 },
  error: null,
  created_at: '2026-01-02T03:04:05Z',
  finished_at: null,
}

/** A parent that puts each update back into the prop, as the run dialog and Jobs page do. */
const Parent = defineComponent({
  setup() {
    const job = ref<Job>(running)
    return () => h(JobStatus, { job: job.value, onUpdate: (j: Job) => (job.value = j) })
  },
})

describe('JobStatus', () => {
  stubEventSource()

  it('keeps one stream and reads the job once per event when the parent feeds updates back', async () => {
    const { fetch, calls } = fakeFetch((url) => (url === '/v1/jobs/job_1' ? json(200, { ...running }) : undefined))
    vi.stubGlobal('fetch', fetch)
    const wrapper = mount(Parent)
    await settle(50)
    expect(FakeEventSource.opened).toHaveLength(1)
    expect(calls).toEqual(['GET /v1/jobs/job_1']) // the snapshot's read, nothing more
    FakeEventSource.opened[0].emit('progress')
    await settle(20)
    expect(FakeEventSource.opened).toHaveLength(1)
    expect(calls).toHaveLength(2)
    wrapper.unmount()
    expect(FakeEventSource.opened[0].closed).toBe(true)
  })

  it('follows a new stream when the job id changes and stops when the job ends', async () => {
    const { fetch } = fakeFetch((url) => {
      if (url === '/v1/jobs/job_1') return json(200, { ...running, state: 'succeeded' })
      if (url === '/v1/jobs/job_2') return json(200, { ...running, id: 'job_2' })
    })
    vi.stubGlobal('fetch', fetch)
    const job = ref<Job>(running)
    const wrapper = mount(defineComponent(() => () => h(JobStatus, { job: job.value })))
    await settle(20)
    expect(FakeEventSource.opened[0].closed).toBe(true) // the job succeeded
    job.value = { ...running, id: 'job_2' }
    await settle(20)
    expect(FakeEventSource.opened.map((s) => s.url)).toEqual(['/v1/jobs/job_1/events', '/v1/jobs/job_2/events'])
    expect(wrapper.find('[data-state]').attributes('data-state')).toBe('running')
    wrapper.unmount()
  })
})
