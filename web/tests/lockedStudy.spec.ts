// A locked (or archived) study is read-only for messages: no "Start thread", reply or
// "Pin comment" form, which the API would refuse with 403.
import { flushPromises, mount } from '@vue/test-utils'
import { createPinia, setActivePinia } from 'pinia'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { Study } from '../src/api'
import { can } from '../src/lib/roles'
import MessagesTab from '../src/views/study/MessagesTab.vue'
import { fakeFetch, json } from './helpers'

const study = (status: Study['status']): Study => ({
  id: 's1', name: 'S', description: '', modality: 'histology', status,
  created_at: '2026-01-01T00:00:00Z', last_activity_at: '2026-01-01T00:00:00Z', my_role: 'owner',
})

describe('a locked study', () => {
  beforeEach(() => setActivePinia(createPinia()))
  afterEach(() => vi.unstubAllGlobals())

  it('lets every member post in an active study only', () => {
    expect(can('viewer', 'message.post', 'active')).toBe(true)
    expect(can('owner', 'message.post', 'locked')).toBe(false)
    expect(can(null, 'message.post', 'archived', true)).toBe(false)
  })

  it('shows its threads without the Start thread and reply forms', async () => {
    const thread = { id: 't1', title: 'Q', image_id: null, region: null, last_message_at: '2026-01-01T00:00:00Z', messages: 1, unread: 0, resolved: false }
    vi.stubGlobal('fetch', fakeFetch((url) => {
      if (url.startsWith('/v1/studies/s1/threads?')) return json(200, { items: [thread] })
      if (url === '/v1/studies/s1/threads/t1') return json(200, { ...thread, messages: { items: [] } })
    }).fetch)
    const locked = mount(MessagesTab, { props: { study: study('locked') }, global: { stubs: { RouterLink: true } } })
    await flushPromises()
    expect(locked.text()).toContain('Q')
    expect(locked.find('form[aria-label="Start a thread"]').exists()).toBe(false)
    await locked.find('.thread-list button').trigger('click')
    await flushPromises()
    expect(locked.find('#thread-open').exists()).toBe(true)
    expect(locked.find('form[aria-label="Reply"]').exists()).toBe(false)
    const active = mount(MessagesTab, { props: { study: study('active') }, global: { stubs: { RouterLink: true } } })
    await flushPromises()
    expect(active.find('form[aria-label="Start a thread"]').exists()).toBe(true)
  })
})
