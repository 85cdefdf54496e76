// The studies list hides archived studies, as the API does, until "Show archived" is on:
// then they are listed, marked archived and read-only, and open like any other.
import { flushPromises, mount } from '@vue/test-utils'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { createMemoryHistory, createRouter } from 'vue-router'
import type { Study } from '../src/api'
import StudiesView from '../src/views/StudiesView.vue'
import { fakeFetch, json } from './helpers'

const study = (id: string, name: string, status: Study['status']): Study => ({
  id, name, description: '', modality: 'histology', status,
  created_at: '2026-01-01T00:00:00Z', last_activity_at: '2026-01-01T00:00:00Z', my_role: 'owner',
})
const live = study('s1', 'Colon cohort', 'active')
const old = study('s0', 'Pilot 2019', 'archived')

/** The API's rule: archived studies only with include_archived=true. */
function serve() {
  return fakeFetch((url) => {
    if (!url.startsWith('/v1/studies?')) return undefined
    const items = new URL(url, 'http://x').searchParams.get('include_archived') === 'true' ? [live, old] : [live]
    return json(200, { items, total: items.length, limit: 100, offset: 0 })
  })
}

async function open(address = '/studies') {
  const server = serve()
  vi.stubGlobal('fetch', server.fetch)
  const router = createRouter({
    history: createMemoryHistory(),
    routes: [
      { path: '/studies', component: StudiesView },
      { path: '/studies/:id', component: { render: () => null } },
    ],
  })
  await router.push(address)
  const wrapper = mount(StudiesView, { global: { plugins: [router] } })
  await flushPromises()
  return { wrapper, router, calls: server.calls }
}

const rows = (w: Awaited<ReturnType<typeof open>>['wrapper']) => w.findAll('tbody tr').map((r) => r.text())

describe('archived studies', () => {
  afterEach(() => vi.unstubAllGlobals())

  it('are listed, marked read-only, once Show archived is on', async () => {
    const { wrapper, router } = await open()
    expect(rows(wrapper)).toHaveLength(1)
    expect(wrapper.text()).not.toContain('Pilot 2019')
    await wrapper.find('input[type="checkbox"]').setValue(true)
    await flushPromises()
    const archived = wrapper.findAll('tbody tr').find((r) => r.text().includes('Pilot 2019'))!
    expect(archived.text()).toContain('archived')
    expect(archived.text()).toContain('read-only')
    expect(archived.find('a').attributes('href')).toBe('/studies/s0')
    expect(router.currentRoute.value.query.archived).toBe('1')
  })

  it('stay shown when the list is opened again with archived=1', async () => {
    const { wrapper, calls } = await open('/studies?archived=1')
    expect((wrapper.find('input[type="checkbox"]').element as HTMLInputElement).checked).toBe(true)
    expect(wrapper.text()).toContain('Pilot 2019')
    expect(calls.some((c) => c.includes('include_archived=true'))).toBe(true)
  })
})
