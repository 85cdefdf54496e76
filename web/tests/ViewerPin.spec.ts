// The viewer's "Pin comment" form: shown in an active study, not in a locked one.
import { flushPromises, mount } from '@vue/test-utils'
import { createPinia, setActivePinia } from 'pinia'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createMemoryHistory, createRouter } from 'vue-router'
import type { Study } from '../src/api'
import ViewerView from '../src/views/ViewerView.vue'
import { fakeFetch, json } from './helpers'

async function viewer(status: Study['status']) {
  const study: Study = {
    id: 's1', name: 'S', description: '', modality: 'histology', status,
    created_at: '2026-01-01T00:00:00Z', last_activity_at: '2026-01-01T00:00:00Z', my_role: 'analyst',
  }
  vi.stubGlobal('fetch', fakeFetch((url) => {
    if (url === '/v1/studies/s1') return json(200, study)
    if (url === '/v1/images/i1') return json(200, { id: 'i1', filename: 'a.png', width: 100, height: 80, format: 'png', created_at: '2026-01-01T00:00:00Z' })
    if (url.includes('/annotations')) return json(200, { features: [] })
    if (url.startsWith('/v1/studies/s1/images')) return json(200, { items: [], total: 0, limit: 50, offset: 0 })
    if (url.startsWith('/v1/studies/s1/analyses')) return json(200, { items: [] })
  }).fetch)
  const router = createRouter({ history: createMemoryHistory(), routes: [{ path: '/viewer/:imageId', component: ViewerView, props: true }] })
  await router.push('/viewer/i1?study=s1')
  const wrapper = mount(ViewerView, {
    props: { imageId: 'i1' },
    global: { plugins: [router], stubs: { DeepZoom: true, AnnotationLayer: true, AnnotationTools: true, AnnotationList: true, ChannelPanel: true, ScaleBar: true } },
  })
  await flushPromises()
  return wrapper
}

describe('the viewer in a study', () => {
  beforeEach(() => setActivePinia(createPinia()))
  afterEach(() => vi.unstubAllGlobals())

  it('offers Pin comment in an active study only', async () => {
    expect((await viewer('active')).find('form[aria-label="Pin a comment"]').exists()).toBe(true)
    expect((await viewer('locked')).find('form[aria-label="Pin a comment"]').exists()).toBe(false)
  })
})
