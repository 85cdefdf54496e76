import { flushPromises, mount } from '@vue/test-utils'
import { createPinia, setActivePinia } from 'pinia'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import ModelsView from '../src/views/ModelsView.vue'
import { useSession } from '../src/stores/session'
import { fakeFetch, json } from './helpers'

function registry(level: string) {
  const aliases = { production: 1 }
  return fakeFetch((url, init) => {
    if (url === '/v1/models') return json(200, { items: [{ name: 'nuclei', versions: 2, latest: 2, aliases: { ...aliases } }] })
    if (url === '/v1/models/nuclei') {
      return json(200, {
        name: 'nuclei', latest: 2, aliases: { ...aliases },
        versions: [1, 2].map((v) => ({ version: v, aliases: Object.entries(aliases).filter(([, x]) => x === v).map(([a]) => a) })),
      })
    }
    if (url === '/v1/models/nuclei/permissions/u1') return json(200, { model: 'nuclei', user_id: 'u1', level })
    if (url === '/v1/models/nuclei/aliases/production' && init.method === 'PUT') {
      aliases.production = JSON.parse(String(init.body)).version
      return json(200, { alias: 'production', version: aliases.production })
    }
  })
}

async function opened(level: string) {
  const server = registry(level)
  vi.stubGlobal('fetch', server.fetch)
  const wrapper = mount(ModelsView, { global: { stubs: { DriftChart: true, ModelCard: true, TrainingPanel: true } } })
  await flushPromises()
  await wrapper.find('button.linklike').trigger('click')
  await flushPromises()
  return { wrapper, calls: server.calls }
}

describe('ModelsView', () => {
  beforeEach(() => {
    setActivePinia(createPinia())
    const user = { id: 'u1', username: 'ann', display_name: 'Ann', site_role: 'member' as const, disabled: false, locked: false, created_at: '', last_login_at: null }
    useSession().me = { scope: 'write', via: 'session', key_id: null, user }
    vi.stubGlobal('confirm', () => true)
  })
  afterEach(() => vi.unstubAllGlobals())

  it('after a promotion shows what changed and reloads the registered models', async () => {
    const { wrapper, calls } = await opened('manage')
    const promote = wrapper.findAll('button').find((b) => b.text() === 'Promote to production')!
    await promote.trigger('click') // the newest version (v2) is listed first
    await flushPromises()
    expect(calls).toContain('PUT /v1/models/nuclei/aliases/production')
    expect(wrapper.find('.notice').text()).toBe('nuclei@production → v2')
    expect(calls.filter((c) => c === 'GET /v1/models')).toHaveLength(2)
    expect(wrapper.find('tbody td:nth-child(4)').text()).toBe('production → v2')
  })

  it('asks for an alias instead of sending PUT …/aliases/', async () => {
    const { wrapper, calls } = await opened('manage')
    await wrapper.find('#promote-alias').setValue('  ')
    const promote = wrapper.findAll('button').find((b) => b.text().startsWith('Promote to'))!
    await promote.trigger('click')
    await flushPromises()
    expect(calls.filter((c) => c.startsWith('PUT'))).toEqual([])
    expect(wrapper.find('[role=alert]').text()).toContain('alias')
  })

  it('shows no promote or roll-back buttons to a reader of the model', async () => {
    const { wrapper } = await opened('read')
    const texts = wrapper.findAll('button').map((b) => b.text())
    expect(texts.some((t) => t.startsWith('Roll back') || t.startsWith('Promote'))).toBe(false)
    expect(wrapper.find('#promote-alias').exists()).toBe(false)
    expect(texts).toContain('Card')
  })
})
