// The Images page lists the user's uploads; what their jobs made (masks, overlays) is on
// its own list, with the job that made each — asked from the API by `origin`.
import { flushPromises, mount } from '@vue/test-utils'
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { ImageInfo } from '../src/api'
import ImagesView from '../src/views/ImagesView.vue'
import { fakeFetch, json } from './helpers'

const image = (id: string, filename: string, source: string, job_id: string | null = null) =>
  ({ id, filename, source, job_id, width: 64, height: 48, format: 'png', size_bytes: 900, created_at: '2026-01-01T00:00:00Z' }) as ImageInfo
const upload = image('u1', 'biopsy-3.png', 'upload')
const mask = image('m1', 'mask.png', 'job', 'job42abcdef0123')

/** The API's filter: origin=upload or origin=result; both without it. */
function serve() {
  return fakeFetch((url) => {
    if (!url.startsWith('/v1/images?')) return undefined
    const origin = new URL(url, 'http://x').searchParams.get('origin')
    const items = origin === 'upload' ? [upload] : origin === 'result' ? [mask] : [mask, upload]
    return json(200, { items, total: items.length, next: null })
  })
}

const names = (w: ReturnType<typeof mount>) => w.findAll('tbody tr td:nth-child(2)').map((c) => c.text())

describe('the Images page', () => {
  afterEach(() => vi.unstubAllGlobals())

  it('shows the uploads only, and the job results on their own list', async () => {
    vi.stubGlobal('fetch', serve().fetch)
    const wrapper = mount(ImagesView, { global: { stubs: { RouterLink: { template: '<a><slot /></a>' }, UploadDrop: true } } })
    await flushPromises()
    expect(names(wrapper)).toEqual(['biopsy-3.png'])
    const results = wrapper.findAll('button').find((b) => b.text() === 'Job results')!
    await results.trigger('click')
    await flushPromises()
    expect(results.attributes('aria-pressed')).toBe('true')
    expect(names(wrapper)).toEqual(['mask.png'])
    expect(wrapper.text()).toContain('job job42abcdef0')
    expect(wrapper.findComponent({ name: 'UploadDrop' }).exists()).toBe(false)
  })
})
