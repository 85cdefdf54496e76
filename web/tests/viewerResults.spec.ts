import { afterEach, describe, expect, it, vi } from 'vitest'
import type { ImageInfo } from '../src/api'
import { jobResults, studyResults } from '../src/lib/viewerResults'

const slide = { id: 'slide1', width: 16000, height: 12000 } as ImageInfo
const region = { left: 6976, top: 4976, width: 2048, height: 2048 }

function serve(routes: Record<string, unknown>) {
  vi.stubGlobal(
    'fetch',
    vi.fn(async (url: string) => {
      const path = url.split('?')[0]
      if (!(path in routes)) return new Response('{}', { status: 404 })
      return new Response(JSON.stringify(routes[path]), { status: 200, headers: { 'content-type': 'application/json' } })
    }),
  )
}

afterEach(() => vi.unstubAllGlobals())

describe('the overlays the viewer finds for a slide', () => {
  it('places a study analysis of a region on that region, at the region size', async () => {
    serve({
      '/v1/studies/s1/analyses': {
        items: [
          {
            id: 'a1',
            target: 'he-nuclei',
            created_by: 'me',
            created_at: '2026-12-06T17:00:00Z',
            region,
            images: { slide1: { state: 'succeeded', result_image: 'r1', object_count: 1200, links: { study: { objects: '/v1/studies/s1/analyses/a1/images/slide1/results/objects' }, job: {} } } },
          },
          { id: 'a0', target: 'he-nuclei', created_by: 'me', created_at: '2026-12-06T16:00:00Z', images: { slide1: { state: 'failed' } } },
        ],
      },
    })
    const [found, ...others] = await studyResults('s1', slide, 'me')
    expect(others).toEqual([])
    expect(found.layer).toMatchObject({ imageId: 'r1', width: 2048, height: 2048, region })
    expect(found.label).toContain('region 2048 × 2048')
    expect(found.objectsUrl).toBe('/v1/studies/s1/analyses/a1/images/slide1/results/objects?format=json')
  })

  it('places a whole-image analysis over the whole image', async () => {
    serve({
      '/v1/studies/s1/analyses': {
        items: [{ id: 'a2', target: 'he-nuclei', created_by: 'other', created_at: '2026-12-06T17:00:00Z', images: { slide1: { state: 'succeeded', result_image: 'r2' } } }],
      },
    })
    const [found] = await studyResults('s1', slide, 'me')
    expect(found.layer).toMatchObject({ width: 16000, height: 12000, region: null, url: '/v1/studies/s1/analyses/a2/images/slide1/overlay' })
  })

  it('reads a job’s region from its params and its objects from the task', async () => {
    serve({
      '/v1/jobs': { items: [{ id: 'j1', inputs: ['slide1'] }] },
      '/v1/jobs/j1': {
        id: 'j1',
        kind: 'pipeline',
        params: { pipeline: [{ op: 'preset', name: 'he-nuclei' }], region },
        tasks: [{ index: 0, input: 'slide1', result_image: 'r3', artifacts: [{ name: 'objects', url: '/v1/jobs/j1/tasks/0/results/objects' }] }],
      },
      '/v1/images/r3': { id: 'r3', width: 2048, height: 2048 },
    })
    const [found] = await jobResults(slide)
    expect(found.layer).toEqual({ imageId: 'r3', width: 2048, height: 2048, region })
    expect(found.label).toContain('he-nuclei · region 2048 × 2048')
    expect(found.objectsUrl).toBe('/v1/jobs/j1/tasks/0/results/objects?format=json')
  })
})
