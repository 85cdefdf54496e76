// A double click on a submit button sends one request (and the button is disabled meanwhile).
import { flushPromises, mount } from '@vue/test-utils'
import { createPinia, setActivePinia } from 'pinia'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { ref } from 'vue'
import { useAnnotations } from '../src/lib/useAnnotations'
import KeysView from '../src/views/KeysView.vue'
import MessagesTab from '../src/views/study/MessagesTab.vue'
import type { Study } from '../src/api'
import { fakeFetch, json } from './helpers'

afterEach(() => vi.unstubAllGlobals())

const study: Study = {
  id: 's1', name: 'S', description: '', modality: 'histology', status: 'active',
  created_at: '2026-01-01T00:00:00Z', last_activity_at: '2026-01-01T00:00:00Z', my_role: 'owner',
}

describe('submitting once', () => {
  it('Create key: two fast clicks create one key and its secret stays shown', async () => {
    let made = 0
    const { fetch, calls } = fakeFetch((url, init) => {
      if (url === '/v1/keys' && init.method === 'POST') return json(201, { id: `k${++made}`, key: `pm_secret_${made}` })
      if (url === '/v1/keys') return json(200, { items: [] })
    })
    vi.stubGlobal('fetch', fetch)
    const wrapper = mount(KeysView)
    await flushPromises()
    await wrapper.find('#key-name').setValue('ci')
    const form = wrapper.find('form')
    await form.trigger('submit')
    expect(wrapper.find('button[type=submit]').attributes('disabled')).toBeDefined()
    await form.trigger('submit')
    await flushPromises()
    expect(calls.filter((c) => c === 'POST /v1/keys')).toHaveLength(1)
    expect(wrapper.find('.secret').text()).toBe('pm_secret_1')
    expect(wrapper.find('button[type=submit]').attributes('disabled')).toBeUndefined()
  })

  it('Start thread: two fast submits start one thread', async () => {
    setActivePinia(createPinia())
    const { fetch, calls } = fakeFetch((url, init) => {
      if (url === '/v1/studies/s1/threads' && init.method === 'POST') return json(201, { id: 't1', title: 'x', unread: 0 })
      if (url.startsWith('/v1/studies/s1/threads?')) return json(200, { items: [] })
      if (url === '/v1/studies/s1/threads/t1') return json(200, { id: 't1', title: 'x', messages: { items: [] } })
    })
    vi.stubGlobal('fetch', fetch)
    const wrapper = mount(MessagesTab, { props: { study }, global: { stubs: { RouterLink: true } } })
    await flushPromises()
    await wrapper.find('#thread-title').setValue('Question')
    const form = wrapper.find('form[aria-label="Start a thread"]')
    await form.trigger('submit')
    await form.trigger('submit')
    await flushPromises()
    expect(calls.filter((c) => c === 'POST /v1/studies/s1/threads')).toHaveLength(1)
  })

  it('Promote to annotations: a second promote while the first runs is refused', async () => {
    const { fetch, calls } = fakeFetch((url, init) => {
      if (url.endsWith('/promote') && init.method === 'POST') return json(201, { annotation_ids: ['a1'] })
      if (url.includes('/annotations')) return json(200, { features: [] })
    })
    vi.stubGlobal('fetch', fetch)
    const a = useAnnotations(ref('s1'), ref('i1'))
    const first = a.promote('an1', [1])
    expect(a.pending.value).toBe(true)
    await a.promote('an1', [1])
    await first
    expect(calls.filter((c) => c.endsWith('/promote'))).toHaveLength(1)
    expect(a.pending.value).toBe(false)
  })
})
