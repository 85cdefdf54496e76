// The browser tab names the page: a study's page its name, and it keeps it while the user
// moves between the study's tabs (a change of the address's query only).
import { flushPromises, mount } from '@vue/test-utils'
import { createPinia, setActivePinia } from 'pinia'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { defineComponent, h } from 'vue'
import { RouterView } from 'vue-router'
import type { Study } from '../src/api'
import { router } from '../src/router'
import { useSession } from '../src/stores/session'
import { fakeFetch, json, stubEventSource } from './helpers'

const study: Study = {
  id: 's1', name: 'Colon cohort', description: '', modality: 'histology', status: 'active',
  created_at: '2026-01-01T00:00:00Z', last_activity_at: '2026-01-01T00:00:00Z', my_role: 'viewer',
}

describe('the page title', () => {
  stubEventSource()
  beforeEach(() => {
    setActivePinia(createPinia())
    const session = useSession()
    session.loaded = true
    session.me = { scope: 'write', via: 'session', key_id: null }
  })
  afterEach(() => vi.unstubAllGlobals())

  it('is the study’s name on its page, tab after tab', async () => {
    vi.stubGlobal('fetch', fakeFetch((url) => {
      if (url === '/v1/studies/s1') return json(200, study)
      if (url.startsWith('/v1/studies/s1/')) return json(200, { items: [], total: 0, limit: 50, offset: 0, next: null })
    }).fetch)
    await router.push('/studies')
    expect(document.title).toBe('Studies · pixelmill')
    const app = mount(defineComponent({ render: () => h(RouterView) }), { global: { plugins: [router] } })
    await router.push('/studies/s1')
    await flushPromises()
    await vi.waitFor(() => expect(document.title).toBe('Colon cohort · Study · pixelmill'))
    await app.find('#tab-activity').trigger('click')
    await flushPromises()
    expect(router.currentRoute.value.query.tab).toBe('activity')
    expect(document.title).toBe('Colon cohort · Study · pixelmill')
    await router.push('/keys')
    expect(document.title).toBe('API keys · pixelmill')
    app.unmount()
  })
})
