// Annotations of one study image over /v1/studies/{sid}/images/{iid}/annotations (GeoJSON
// features): the ones in view (the viewport query, at most 500), draw, edit (geometry,
// class, review state) and delete — every write names the version read (If-Match); a 412
// shows the problem, reloads the current version and keeps the edit to apply again.
// A QuPath GeoJSON file imports into the image; the image's annotations export as one.
import { computed, ref, type Ref } from 'vue'
import { ApiError, get, post, request } from '../api'
import { useAttempt } from './useAttempt'

export interface Feature {
  type: 'Feature'
  geometry: { type: string; coordinates: unknown }
  properties: { classification?: { name?: string }; name?: string; shape?: string; review?: Review; [k: string]: unknown }
  pixelmill: { id: string; version: number; shape: string; bbox: [number, number, number, number]; source: string; analysis_id?: string | null }
}

/** A reviewer's verdict on an annotation (kept in its properties as `review`). */
export type Review = 'pending' | 'approved' | 'rejected'
export const REVIEWS: Review[] = ['pending', 'approved', 'rejected']

export interface Region {
  x: number
  y: number
  w: number
  h: number
}

/** The most features one viewport query asks for. */
export const VIEWPORT_LIMIT = 500

/** An edit the server refused because the annotation changed meanwhile (412). */
export interface Conflict {
  id: string
  patch: Record<string, unknown>
}

export function className(f: Feature): string {
  return f.properties?.classification?.name ?? ''
}

export function reviewOf(f: Feature): Review {
  const r = f.properties?.review
  return r === 'approved' || r === 'rejected' ? r : 'pending'
}

/** What a person calls the shape: rectangle, polygon, point... */
export function shapeName(f: Feature): string {
  return f.properties?.shape === 'rectangle' ? 'rectangle' : f.pixelmill.shape.toLowerCase()
}

/** Whether the annotation is read-only model output (edit a promoted copy instead). */
export function readOnly(f: Feature): boolean {
  return f.pixelmill.source === 'analysis'
}

export function useAnnotations(studyId: Ref<string>, imageId: Ref<string>) {
  const features = ref<Feature[]>([])
  const truncated = ref(false)
  const selected = ref<string>('')
  const conflict = ref<Conflict | null>(null)
  const { error, pending, attempt } = useAttempt()
  const base = computed(() => `/v1/studies/${studyId.value}/images/${imageId.value}/annotations`)
  let region: Region | null = null
  let asked = 0

  /** The annotations in `r` (image pixels); a later call wins over one still running. */
  const loadRegion = (r: Region) => attempt(async () => {
    if (!studyId.value) return
    region = r
    const ticket = ++asked
    const q = new URLSearchParams({ x: String(r.x), y: String(r.y), w: String(r.w), h: String(r.h), limit: String(VIEWPORT_LIMIT) })
    const found = await get<{ features: Feature[]; truncated?: boolean }>(`${base.value}?${q}`)
    if (ticket !== asked) return
    features.value = found.features
    truncated.value = !!found.truncated
  }, { keep: true })

  const reload = () => (region ? loadRegion(region) : Promise.resolve())

  const put = (f: Feature) => {
    const i = features.value.findIndex((x) => x.pixelmill.id === f.pixelmill.id)
    features.value = i < 0 ? [...features.value, f] : features.value.map((x, j) => (j === i ? f : x))
  }

  const create = (geometry: Feature['geometry'], cls: string, extra: Record<string, unknown> = {}) => attempt(async () => {
    const properties = { ...extra, ...(cls.trim() ? { classification: { name: cls.trim() } } : {}) }
    const made = await post<Feature>(base.value, { type: 'Feature', geometry, properties })
    put(made)
    selected.value = made.pixelmill.id
  })

  /** A JSON merge patch of one annotation, at the version this client read. */
  const change = (f: Feature, patch: Record<string, unknown>) => attempt(async () => {
    conflict.value = null
    try {
      const headers = { 'If-Match': `"v${f.pixelmill.version}"` }
      put(await request<Feature>(`${base.value}/${f.pixelmill.id}`, { method: 'PATCH', json: patch, headers }))
    } catch (err) {
      if (err instanceof ApiError && err.status === 412) {
        conflict.value = { id: f.pixelmill.id, patch }
        put(await get<Feature>(`${base.value}/${f.pixelmill.id}`))
      }
      throw err
    }
  })

  /** Applies the refused edit to the version now on the server. */
  const applyAgain = async () => {
    const c = conflict.value
    const f = features.value.find((x) => x.pixelmill.id === c?.id)
    if (c && f) await change(f, c.patch)
  }

  const setGeometry = (f: Feature, geometry: Feature['geometry']) => change(f, { geometry })
  const setClass = (f: Feature, cls: string) =>
    change(f, { properties: { classification: cls.trim() ? { name: cls.trim() } : null } })
  const setReview = (f: Feature, review: Review) => change(f, { properties: { review } })

  const remove = (f: Feature) => attempt(async () => {
    await request<void>(`${base.value}/${f.pixelmill.id}`, { method: 'DELETE', headers: { 'If-Match': `"v${f.pixelmill.version}"` } })
    features.value = features.value.filter((x) => x.pixelmill.id !== f.pixelmill.id)
    if (selected.value === f.pixelmill.id) selected.value = ''
  })

  /** Copies objects (their labels) of a study analysis into annotations of this image. */
  const promote = (analysisId: string, labels: number[]) => attempt(async () => {
    const url = `/v1/studies/${studyId.value}/analyses/${analysisId}/promote`
    const made = await post<{ annotation_ids: string[] }>(url, { image_id: imageId.value, object_ids: labels })
    await reload()
    selected.value = made.annotation_ids[0] ?? ''
  }, { once: true })

  /** How many annotations the last import made (null: none yet, or it failed). */
  const imported = ref<number | null>(null)

  /** Imports a GeoJSON file (a QuPath export: a FeatureCollection, a Feature or an array of
   * them) into this image, then shows the annotations in view again. */
  const importFile = (file: Blob) => attempt(async () => {
    imported.value = null
    const headers = { 'Content-Type': 'application/geo+json' }
    const made = await request<{ imported: number }>(`${base.value}/import`, { method: 'POST', body: file, headers })
    imported.value = made.imported
    await reload()
  }, { once: true })

  /** The download of every annotation of the image, as QuPath GeoJSON. */
  const exportUrl = computed(() => `${base.value}/export`)

  const current = computed(() => features.value.find((f) => f.pixelmill.id === selected.value) ?? null)

  return {
    features, truncated, selected, current, conflict, error, pending, imported, exportUrl,
    loadRegion, reload, create, change, applyAgain, setGeometry, setClass, setReview, remove, promote, importFile,
  }
}

export type Annotations = ReturnType<typeof useAnnotations>
