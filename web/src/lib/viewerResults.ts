// What the viewer can lay over an image: the study's finished analyses of it, or (without
// a study) your own finished jobs on it that made a result image.
import { get, type Analysis, type ImageInfo, type Job } from '../api'
import type { Layer } from '../components/DeepZoom.vue'
import { when } from './format'
import type { PixelRegion } from './placement'

export interface Result {
  id: string
  label: string
  layer: Layer
  /** the per-object measurements (centroids and boxes in the image's pixels) */
  objectsUrl?: string
}

/** The study's finished analyses of this image: their overlays, as render tiles for the
 * analysis's author (who owns the result image), else as the one overlay PNG any member
 * may read. */
export async function studyResults(study: string, info: ImageInfo, me: string | undefined): Promise<Result[]> {
  const page = await get<{ items: Analysis[] }>(`/v1/studies/${study}/analyses?limit=50`)
  const found: Result[] = []
  for (const a of page.items) {
    const entry = a.images[info.id]
    if (entry?.state !== 'succeeded' || !entry.result_image) continue
    const own = a.created_by === me
    // a region's result is the region's size, drawn on the region (objects are in the
    // image's pixels either way)
    const region = a.region ?? null
    const size = region ? { width: region.width, height: region.height } : { width: info.width, height: info.height }
    const layer: Layer = own
      ? { imageId: entry.result_image, ...size, region }
      : { imageId: entry.result_image, ...size, region, url: `/v1/studies/${study}/analyses/${a.id}/images/${info.id}/overlay` }
    const objectsUrl = entry.links?.study.objects ? `${entry.links.study.objects}?format=json` : undefined
    const where = region ? ` · region ${region.width} × ${region.height}` : ''
    found.push({ id: a.id, label: `${a.target}${where} · ${entry.object_count ?? '?'} objects · ${when(a.created_at)}`, layer, objectsUrl })
  }
  return found
}

/** Without a study: your own finished jobs on this image that made a result image. */
export async function jobResults(info: ImageInfo): Promise<Result[]> {
  const jobs = (await get<{ items: Job[] }>('/v1/jobs?state=succeeded&limit=100')).items
  const found: Result[] = []
  for (const j of jobs.filter((x) => x.inputs.includes(info.id)).slice(0, 10)) {
    const full = await get<Job>(`/v1/jobs/${j.id}`)
    const task = full.tasks?.find((t) => t.input === info.id && t.result_image)
    if (!task?.result_image) continue
    const result = await get<ImageInfo>(`/v1/images/${task.result_image}`)
    const params = full.params as { pipeline?: { name?: string }[]; region?: PixelRegion }
    const name = params.pipeline?.[0]?.name ?? full.kind
    const region = params.region ?? null
    const where = region ? ` · region ${region.width} × ${region.height}` : ''
    const objects = task.artifacts?.find((a) => a.name === 'objects')
    found.push({
      id: full.id,
      label: `job ${full.id.slice(0, 8)} · ${name}${where}`,
      layer: { imageId: result.id, width: result.width, height: result.height, region },
      objectsUrl: objects ? `${objects.url}?format=json` : undefined,
    })
  }
  return found
}
