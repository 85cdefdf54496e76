// The audit log's Target column says what each event acted on: its kind, its name when
// the event recorded one, a link to the page that shows it, and the study it was in.
import { flushPromises, mount } from '@vue/test-utils'
import { afterEach, describe, expect, it, vi } from 'vitest'
import AuditLog from '../src/views/admin/AuditLog.vue'
import { fakeFetch, json } from './helpers'

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
})
