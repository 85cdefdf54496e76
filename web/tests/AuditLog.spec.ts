// The audit log's Target column says what each event acted on: its kind, its name when
// the event recorded one, a link to the page that shows it, and the study it was in.
import { flushPromises, mount } from '@vue/test-utils'
import { afterEach, describe, expect, it, vi } from 'vitest'
import AuditLog from '../src/views/admin/AuditLog.vue'
import { fakeFetch, json, settle } from './helpers'

const event = (id: number, fields: Record<string, unknown>) => ({
  id, at: '2026-03-01T10:00:00Z', actor_username: 'olga', key_id: null, ip: '10.0.0.1', security: false,
  study_id: null, target_id: null, before: null, after: null, ...fields,
})
const events = [
  event(4, { action: 'study.create', target_type: 'study', target_id: 'stu0123456789abcdef', study_id: 'stu0123456789abcdef', after: { name: 'Colon cohort' } }),
  event(3, { action: 'image.add', target_type: 'image', target_id: 'img0123456789abcdef', study_id: 'stu0123456789abcdef' }),
  event(2, { action: 'user.update', target_type: 'user', target_id: 'usr0123456789abcdef', after: { username: 'vic' }, security: true }),
  event(1, { action: 'audit.read', target_type: 'audit' }),
]

describe('the audit log', () => {
  afterEach(() => vi.unstubAllGlobals())

  it('names and links what each event acted on', async () => {
    vi.stubGlobal('fetch', fakeFetch((url) => (url.startsWith('/v1/audit/events?') ? json(200, { items: events, next_before_id: null }) : undefined)).fetch)
    const wrapper = mount(AuditLog, { global: { stubs: { RouterLink: { props: ['to'], template: '<a :href="to"><slot /></a>' } } } })
    await flushPromises()
    const headers = wrapper.findAll('thead th').map((th) => th.text())
    const target = (row: number) => wrapper.findAll('tbody tr')[row].findAll('td')[headers.indexOf('Target')]
    expect(target(0).text()).toBe('study Colon cohort')
    expect(target(0).find('a').attributes()).toMatchObject({ href: '/studies/stu0123456789abcdef', title: 'stu0123456789abcdef' })
    expect(target(1).text()).toBe('image img012345678 in study stu012345678')
    expect(target(1).findAll('a').map((a) => a.attributes('href'))).toEqual([
      '/viewer/img0123456789abcdef?study=stu0123456789abcdef',
      '/studies/stu0123456789abcdef',
    ])
    expect(target(2).text()).toBe('user vic')
    expect(target(3).text()).toBe('audit')
  })

  it('shows a refused route whole, and the events of one request when its id is chosen', async () => {
    const refused = event(6, { action: 'denied.scope', target_type: 'route', target_id: 'POST /v1/studies/{study_id}/images', security: true, request_id: 'req-abcdef123456' })
    const other = event(5, { action: 'image.upload', target_type: 'image', target_id: 'img0123456789abcdef', request_id: 'req-zzz' })
    const { fetch, calls } = fakeFetch((url) => {
      if (!url.startsWith('/v1/audit/events?')) return undefined
      const asked = new URL(url, 'http://x').searchParams.get('request_id')
      return json(200, { items: asked ? [refused] : [refused, other], next_before_id: null })
    })
    vi.stubGlobal('fetch', fetch)
    const wrapper = mount(AuditLog, { global: { stubs: { RouterLink: { props: ['to'], template: '<a :href="to"><slot /></a>' } } } })
    await flushPromises()
    const headers = wrapper.findAll('thead th').map((th) => th.text())
    const cell = (row: number, col: string) => wrapper.findAll('tbody tr')[row].findAll('td')[headers.indexOf(col)]
    expect(cell(0, 'Target').text()).toBe('route POST /v1/studies/{study_id}/images')
    expect(cell(0, 'Request').text()).toBe('req-abcd')
    await cell(0, 'Request').find('button').trigger('click')
    await settle(350)
    await flushPromises()
    expect(calls[calls.length - 1]).toContain('request_id=req-abcdef123456')
    expect(wrapper.findAll('tbody tr')).toHaveLength(1)
    expect((wrapper.find('#audit-request').element as HTMLInputElement).value).toBe('req-abcdef123456')
  })
})
