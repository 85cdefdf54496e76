import { afterEach, describe, expect, it, vi } from 'vitest'
import { ref } from 'vue'
import { ApiError } from '../src/api'
import { useAnnotations, type Feature } from '../src/lib/useAnnotations'

/** One annotation behind a fetch that keeps versions like the server: a write names the
 * version it read (If-Match) and gets 412 when it is not the current one. */
function serverWith(feature: Feature) {
  let current = structuredClone(feature)
  const json = (status: number, body: unknown) =>
    new Response(JSON.stringify(body), { status, headers: { 'content-type': status < 400 ? 'application/json' : 'application/problem+json' } })
  const fetch = vi.fn(async (url: string, init: RequestInit = {}) => {
    const method = init.method ?? 'GET'
    if (method === 'GET' && url.includes('?')) return json(200, { features: [current] })
    if (method === 'GET') return json(200, current)
    if (method === 'PATCH') {
      const sent = (init.headers as Record<string, string>)['If-Match']
      if (sent !== `"v${current.pixelmill.version}"`) return json(412, { status: 412, detail: `version ${current.pixelmill.version} is current, you sent ${sent}` })
      const patch = JSON.parse(String(init.body))
      current = {
        ...current,
        properties: { ...current.properties, ...patch.properties },
        geometry: patch.geometry ?? current.geometry,
        pixelmill: { ...current.pixelmill, version: current.pixelmill.version + 1 },
      }
      return json(200, current)
    }
    return json(405, {})
  })
  const elsewhere = (properties: Feature['properties']) => {
    current = { ...current, properties: { ...current.properties, ...properties }, pixelmill: { ...current.pixelmill, version: current.pixelmill.version + 1 } }
  }
  return { fetch, elsewhere, now: () => current }
}

const square: Feature = {
  type: 'Feature',
  geometry: { type: 'Polygon', coordinates: [[[0, 0], [10, 0], [10, 10], [0, 10], [0, 0]]] },
  properties: { classification: { name: 'tumor' } },
  pixelmill: { id: 'a1', version: 1, shape: 'Polygon', bbox: [0, 0, 10, 10], source: 'user' },
}

describe('annotations of a study image', () => {
  afterEach(() => vi.unstubAllGlobals())

  it('loads only the viewport, at most 500', async () => {
    const server = serverWith(square)
    vi.stubGlobal('fetch', server.fetch)
    const a = useAnnotations(ref('s1'), ref('i1'))
    await a.loadRegion({ x: 0, y: 0, w: 100, h: 50 })
    expect(a.features.value).toHaveLength(1)
    expect(String(server.fetch.mock.calls[0][0])).toBe('/v1/studies/s1/images/i1/annotations?x=0&y=0&w=100&h=50&limit=500')
  })

  it('on 412 shows why, reloads the current version and can apply the edit to it', async () => {
    const server = serverWith(square)
    vi.stubGlobal('fetch', server.fetch)
    const a = useAnnotations(ref('s1'), ref('i1'))
    await a.loadRegion({ x: 0, y: 0, w: 100, h: 100 })
    // someone else renames it meanwhile
    server.elsewhere({ name: 'checked by Rita' })

    await a.setReview(a.features.value[0], 'approved')

    expect((a.error.value as ApiError).status).toBe(412)
    expect((a.error.value as ApiError).message).toContain('version 2 is current')
    expect(a.features.value[0].pixelmill.version).toBe(2) // the server's, shown
    expect(a.features.value[0].properties.name).toBe('checked by Rita')
    expect(a.conflict.value).toEqual({ id: 'a1', patch: { properties: { review: 'approved' } } })

    await a.applyAgain()

    expect(a.error.value).toBeNull()
    expect(a.conflict.value).toBeNull()
    expect(server.now().properties).toMatchObject({ review: 'approved', name: 'checked by Rita' })
    expect(a.features.value[0].pixelmill.version).toBe(3)
  })
})
