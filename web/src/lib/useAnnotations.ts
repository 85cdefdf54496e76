// Annotations of one study image: load, draw (rectangle, point), select, delete — over
// /v1/studies/{sid}/images/{iid}/annotations (GeoJSON features; writes need If-Match).
import { computed, ref, type Ref } from 'vue'
import { get, post, request } from '../api'
import { useAttempt } from './useAttempt'

export interface Feature {
  type: 'Feature'
  geometry: { type: string; coordinates: unknown }
  properties: { classification?: { name?: string }; name?: string }
  pixelmill: { id: string; version: number; shape: string; bbox: [number, number, number, number]; source: string }
}

export type Drawn = { x: number; y: number; w: number; h: number } | { x: number; y: number }

/** The GeoJSON geometry of a drawn rectangle (a closed polygon ring) or point. */
export function geometryOf(shape: Drawn): Feature['geometry'] {
  if (!('w' in shape)) return { type: 'Point', coordinates: [shape.x, shape.y] }
  const { x, y, w, h } = shape
  return { type: 'Polygon', coordinates: [[[x, y], [x + w, y], [x + w, y + h], [x, y + h], [x, y]]] }
}

export function className(f: Feature): string {
  return f.properties?.classification?.name ?? ''
}

export function useAnnotations(studyId: Ref<string>, imageId: Ref<string>) {
  const features = ref<Feature[]>([])
  const selected = ref<string>('')
  const { error, attempt } = useAttempt()
  const base = computed(() => `/v1/studies/${studyId.value}/images/${imageId.value}/annotations`)

  const load = () => attempt(async () => {
    if (!studyId.value) return
    features.value = (await get<{ features: Feature[] }>(`${base.value}?limit=1000`)).features
  })

  const create = (shape: Drawn, cls: string) => attempt(async () => {
    const properties = cls.trim() ? { classification: { name: cls.trim() } } : {}
    const made = await post<Feature>(base.value, { type: 'Feature', geometry: geometryOf(shape), properties })
    features.value = [...features.value, made]
    selected.value = made.pixelmill.id
  })

  const remove = (f: Feature) => attempt(async () => {
    await fetchDelete(`${base.value}/${f.pixelmill.id}`, f.pixelmill.version)
    features.value = features.value.filter((x) => x.pixelmill.id !== f.pixelmill.id)
  })

  const marks = computed(() =>
    features.value.map((f) => ({
      id: f.pixelmill.id,
      bbox: f.pixelmill.bbox,
      point: f.pixelmill.shape === 'Point',
      label: className(f) || f.pixelmill.shape,
      selected: f.pixelmill.id === selected.value,
    })),
  )

  return { features, selected, error, marks, load, create, remove }
}

/** DELETE with the version this client saw: a newer one on the server answers 412. */
async function fetchDelete(path: string, version: number) {
  await request<void>(path, { method: 'DELETE', headers: { 'If-Match': `"v${version}"` } })
}
