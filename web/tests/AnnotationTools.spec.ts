// The viewer's annotations as a GeoJSON file: Export downloads every annotation of the
// image; Import uploads a QuPath export, says how many it made, and shows a refusal.
import { flushPromises, mount } from '@vue/test-utils'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { ref } from 'vue'
import AnnotationTools from '../src/components/AnnotationTools.vue'
import { useAnnotations } from '../src/lib/useAnnotations'
import { fakeFetch, json } from './helpers'

const BASE = '/v1/studies/s1/images/i1/annotations'
const collection = (n: number) =>
  JSON.stringify({ type: 'FeatureCollection', features: Array.from({ length: n }, () => ({ type: 'Feature', geometry: { type: 'Point', coordinates: [1, 2] }, properties: {} })) })

/** Import as the API: a FeatureCollection makes its features; anything else is a 422. */
function serve() {
  const sent: string[] = []
  async function importing(init: RequestInit): Promise<Response> {
    const text = await (init.body as Blob).text()
    sent.push((init.headers as Record<string, string>)['Content-Type'])
    try {
      return json(201, { imported: JSON.parse(text).features.length, ids: [] })
    } catch {
      return json(422, { status: 422, title: 'Invalid input', detail: 'the file is not GeoJSON: expected a FeatureCollection' })
    }
  }
  const server = fakeFetch((url, init) => {
    if (url === `${BASE}/import` && init.method === 'POST') return importing(init)
    if (url.startsWith(`${BASE}?`)) return json(200, { features: [] })
  })
  return { ...server, sent }
}

function tools(editable: boolean) {
  const annotations = useAnnotations(ref('s1'), ref('i1'))
  return mount(AnnotationTools, { props: { annotations, editable, side: false, tool: 'pan', cls: '' } })
}

async function choose(wrapper: ReturnType<typeof tools>, file: File) {
  const input = wrapper.find('input[type="file"]')
  Object.defineProperty(input.element, 'files', { value: [file], configurable: true })
  await input.trigger('change')
  await flushPromises()
}

describe('annotations as a GeoJSON file', () => {
  afterEach(() => vi.unstubAllGlobals())

  it('exports every annotation of the image as a download', () => {
    const link = tools(false).findAll('a').find((a) => a.text() === 'Export GeoJSON')!
    expect(link.attributes('href')).toBe(`${BASE}/export`)
    expect(link.attributes()).toHaveProperty('download')
  })

  it('imports a file and says how many annotations it made', async () => {
    const server = serve()
    vi.stubGlobal('fetch', server.fetch)
    const wrapper = tools(true)
    await choose(wrapper, new File([collection(3)], 'qupath.geojson'))
    expect(wrapper.find('[role="status"]').text()).toBe('Imported 3 annotations.')
    expect(server.sent).toEqual(['application/geo+json'])
    expect(wrapper.find('[role="alert"]').exists()).toBe(false)
  })

  it('shows why a file was refused', async () => {
    vi.stubGlobal('fetch', serve().fetch)
    const wrapper = tools(true)
    await choose(wrapper, new File(['not json'], 'notes.txt'))
    expect(wrapper.find('[role="alert"]').text()).toBe('the file is not GeoJSON: expected a FeatureCollection')
    expect(wrapper.find('[role="status"]').exists()).toBe(false)
  })

  it('offers no import to a user who may not annotate', () => {
    const wrapper = tools(false)
    expect(wrapper.findAll('button').some((b) => b.text().startsWith('Import'))).toBe(false)
    expect(wrapper.find('input[type="file"]').exists()).toBe(false)
  })
})
