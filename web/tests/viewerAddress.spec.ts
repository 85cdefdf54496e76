// The viewer writes what is seen into the address (view=, overlay=) as it changes, without
// navigating, so the address bar can be shared or bookmarked; the tab names the image.
import { flushPromises, mount } from '@vue/test-utils'
import { createPinia, setActivePinia } from 'pinia'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { defineComponent, h } from 'vue'
import { createRouter, createWebHistory } from 'vue-router'
import type { Study } from '../src/api'
import ViewerView from '../src/views/ViewerView.vue'
import { fakeFetch, json, settle } from './helpers'

const study: Study = {
  id: 's1', name: 'Colon cohort', description: '', modality: 'histology', status: 'active',
  created_at: '2026-01-01T00:00:00Z', last_activity_at: '2026-01-01T00:00:00Z', my_role: 'analyst',
}
const done = (id: string, at: string) => ({
  id, target: 'he-nuclei', created_by: 'someone', created_at: at,
  images: { i1: { state: 'succeeded', result_image: `r-${id}`, object_count: 3 } },
})

/** The part of the image the (stubbed) deep-zoom viewer shows; `view` as OpenSeadragon's. */
let inView = { x: 10, y: 20, w: 300, h: 200 }
const DeepZoomStub = defineComponent({
  emits: ['view', 'ready', 'error'],
  setup(_, { expose }) {
    expose({ region: () => inView, show: () => {}, goTo: () => {} })
    return () => h('div', { class: 'deep-zoom-stub' })
  },
})

async function openViewer(address: string) {
  vi.stubGlobal('fetch', fakeFetch((url) => {
    if (url === '/v1/studies/s1') return json(200, study)
    if (url === '/v1/images/i1') return json(200, { id: 'i1', filename: 'slide-7.svs', width: 1000, height: 800, format: 'tiff', created_at: '2026-01-01T00:00:00Z' })
    if (url.includes('/annotations')) return json(200, { features: [] })
    if (url.startsWith('/v1/studies/s1/images')) return json(200, { items: [], total: 0, limit: 50, offset: 0 })
    if (url.startsWith('/v1/studies/s1/analyses')) return json(200, { items: [done('a2', '2026-02-02T00:00:00Z'), done('a1', '2026-01-01T00:00:00Z')] })
  }).fetch)
  const router = createRouter({
    history: createWebHistory(),
    routes: [
      { path: '/viewer/:imageId', component: ViewerView, props: true },
      { path: '/elsewhere', component: { render: () => null } },
      { path: '/studies/:id', component: { render: () => null } },
    ],
  })
  await router.push(address)
  const wrapper = mount(ViewerView, {
    props: { imageId: 'i1' },
    global: { plugins: [router], stubs: { DeepZoom: DeepZoomStub, AnnotationLayer: true, AnnotationTools: true, ChannelPanel: true } },
  })
  await flushPromises()
  return { wrapper, router }
}

describe('the viewer’s address', () => {
  beforeEach(() => {
    setActivePinia(createPinia())
    inView = { x: 10, y: 20, w: 300, h: 200 }
  })
  afterEach(() => vi.unstubAllGlobals())

  it('follows the view and the overlay, once the view stops, without a navigation', async () => {
    const { wrapper, router } = await openViewer('/viewer/i1?study=s1')
    const entries = history.length
    const zoom = wrapper.findComponent(DeepZoomStub)
    zoom.vm.$emit('view', { x: 0.5, y: 0.4 }, 2)
    inView = { x: 120, y: 64, w: 256, h: 128 }
    zoom.vm.$emit('view', { x: 0.3, y: 0.1 }, 4)
    await settle(450)
    const q = new URLSearchParams(location.search)
    expect(location.pathname).toBe('/viewer/i1')
    expect(q.get('study')).toBe('s1')
    expect(q.get('view')).toBe('120,64,256,128')
    expect(q.get('overlay')).toBe('a2')
    expect(location.search).toContain('view=120,64,256,128') // readable, not %2C
    // another result chosen: it is in the address too
    await wrapper.find('#overlay-pick').setValue('a1')
    await settle(450)
    expect(new URLSearchParams(location.search).get('overlay')).toBe('a1')
    expect(history.length).toBe(entries)
    // the router keeps the address as it now is: away and back comes back to this view
    await router.push('/elsewhere')
    router.back()
    await vi.waitFor(() => expect(location.pathname).toBe('/viewer/i1'))
    expect(new URLSearchParams(location.search).get('view')).toBe('120,64,256,128')
  })

  it('opens on the view and overlay the address gives, and switching the layout keeps them', async () => {
    const { wrapper, router } = await openViewer('/viewer/i1?study=s1&view=5,6,70,80&overlay=a1')
    expect((wrapper.find('#overlay-pick').element as HTMLSelectElement).value).toBe('a1')
    wrapper.findComponent(DeepZoomStub).vm.$emit('view', { x: 0.5, y: 0.5 }, 1)
    await settle(450)
    await wrapper.findAll('button').find((b) => b.text() === 'Side by side')!.trigger('click')
    await flushPromises()
    expect(router.currentRoute.value.query).toMatchObject({ mode: 'side', view: '10,20,300,200', overlay: 'a1', study: 's1' })
  })

  it('writes nothing into the next page’s address after leaving', async () => {
    const { wrapper, router } = await openViewer('/viewer/i1?study=s1')
    wrapper.findComponent(DeepZoomStub).vm.$emit('view', { x: 0.5, y: 0.5 }, 1)
    await router.push('/elsewhere?x=1')
    wrapper.unmount()
    await settle(450)
    expect(location.pathname + location.search).toBe('/elsewhere?x=1')
  })

  it('names the tab after the image', async () => {
    await openViewer('/viewer/i1?study=s1')
    expect(document.title).toBe('slide-7.svs · Viewer · pixelmill')
  })
})
