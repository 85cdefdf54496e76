// Annotation geometry in image pixels (level 0): what the SVG layer draws and how it is
// edited — hit tests, vertex insert/move/delete, moving a whole shape, and the transform
// between image and screen pixels. Pure functions: no DOM, no OpenSeadragon.

export interface Pt {
  x: number
  y: number
}

/** A polygon ring without its closing point (GeoJSON repeats the first point at the end). */
export type Ring = Pt[]

/** What one feature draws as: polygons (outer ring first, then holes), a line, points. */
export type Shape =
  | { kind: 'polygon'; rings: Ring[] }
  | { kind: 'line'; points: Pt[] }
  | { kind: 'point'; at: Pt }

type Coords = number[]

function pt(c: Coords): Pt {
  return { x: Number(c[0]), y: Number(c[1]) }
}

/** A GeoJSON ring as a `Ring` (the closing point dropped). */
export function openRing(coords: Coords[]): Ring {
  const ring = coords.map(pt)
  const [first, last] = [ring[0], ring[ring.length - 1]]
  if (ring.length > 1 && first.x === last.x && first.y === last.y) ring.pop()
  return ring
}

/** A `Ring` as a closed GeoJSON ring. */
export function closedRing(ring: Ring): number[][] {
  const out = ring.map((p) => [p.x, p.y])
  if (out.length) out.push([ring[0].x, ring[0].y])
  return out
}

/** The shapes a GeoJSON geometry draws as (a MultiPolygon is several polygons). */
export function shapesOf(geometry: { type: string; coordinates: unknown }): Shape[] {
  const c = geometry.coordinates as never
  switch (geometry.type) {
    case 'Polygon':
      return [{ kind: 'polygon', rings: (c as Coords[][]).map(openRing) }]
    case 'MultiPolygon':
      return (c as Coords[][][]).map((poly) => ({ kind: 'polygon' as const, rings: poly.map(openRing) }))
    case 'LineString':
      return [{ kind: 'line', points: (c as Coords[]).map(pt) }]
    case 'MultiLineString':
      return (c as Coords[][]).map((line) => ({ kind: 'line' as const, points: line.map(pt) }))
    case 'Point':
      return [{ kind: 'point', at: pt(c as Coords) }]
    case 'MultiPoint':
      return (c as Coords[]).map((p) => ({ kind: 'point' as const, at: pt(p) }))
    default:
      return []
  }
}

/** A polygon geometry of an outer ring (and holes kept as they were). */
export function polygonGeometry(outer: Ring, holes: Ring[] = []): { type: 'Polygon'; coordinates: number[][][] } {
  return { type: 'Polygon', coordinates: [closedRing(outer), ...holes.map(closedRing)] }
}

/** The ring of an axis-aligned rectangle. */
export function rectangleRing(x: number, y: number, w: number, h: number): Ring {
  return [{ x, y }, { x: x + w, y }, { x: x + w, y: y + h }, { x, y: y + h }]
}

/** SVG `points` of a ring or a line. */
export function svgPoints(points: Pt[]): string {
  return points.map((p) => `${p.x},${p.y}`).join(' ')
}

/** Whether `p` is inside the ring (even-odd rule; on an edge counts either way). */
export function insideRing(p: Pt, ring: Ring): boolean {
  let inside = false
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
    const a = ring[i]
    const b = ring[j]
    if (a.y > p.y !== b.y > p.y && p.x < ((b.x - a.x) * (p.y - a.y)) / (b.y - a.y) + a.x) inside = !inside
  }
  return inside
}

/** Whether `p` is inside the polygon: in its outer ring and in none of its holes. */
export function insidePolygon(p: Pt, rings: Ring[]): boolean {
  return rings.length > 0 && insideRing(p, rings[0]) && !rings.slice(1).some((h) => insideRing(p, h))
}

/** The distance from `p` to the segment a–b. */
export function segmentDistance(p: Pt, a: Pt, b: Pt): number {
  const dx = b.x - a.x
  const dy = b.y - a.y
  const len2 = dx * dx + dy * dy
  const t = len2 === 0 ? 0 : Math.max(0, Math.min(1, ((p.x - a.x) * dx + (p.y - a.y) * dy) / len2))
  return Math.hypot(p.x - (a.x + t * dx), p.y - (a.y + t * dy))
}

/** The index of the vertex within `tolerance` of `p` (the nearest), or -1. */
export function vertexAt(ring: Ring, p: Pt, tolerance: number): number {
  let best = -1
  let bestD = tolerance
  ring.forEach((v, i) => {
    const d = Math.hypot(v.x - p.x, v.y - p.y)
    if (d <= bestD) {
      best = i
      bestD = d
    }
  })
  return best
}

/** The index i of the edge ring[i]–ring[i+1] (closing edge included) within `tolerance`
 * of `p` (the nearest), or -1. */
export function edgeAt(ring: Ring, p: Pt, tolerance: number): number {
  let best = -1
  let bestD = tolerance
  for (let i = 0; i < ring.length; i++) {
    const d = segmentDistance(p, ring[i], ring[(i + 1) % ring.length])
    if (d <= bestD) {
      best = i
      bestD = d
    }
  }
  return best
}

/** The middle of each edge (where a new vertex may be pulled out), closing edge included. */
export function midpoints(ring: Ring): Pt[] {
  return ring.map((a, i) => {
    const b = ring[(i + 1) % ring.length]
    return { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 }
  })
}

/** The ring with `p` inserted as a new vertex on edge `edge` (after ring[edge]). */
export function insertVertex(ring: Ring, edge: number, p: Pt): Ring {
  return [...ring.slice(0, edge + 1), p, ...ring.slice(edge + 1)]
}

/** The ring without vertex `index`; a polygon keeps at least 3 vertices (null: refused). */
export function deleteVertex(ring: Ring, index: number): Ring | null {
  if (ring.length <= 3 || index < 0 || index >= ring.length) return null
  return ring.filter((_, i) => i !== index)
}

/** The ring with vertex `index` at `p`. A rectangle stays a rectangle: the corner moves,
 * the opposite one stays, the two others follow. */
export function moveVertex(ring: Ring, index: number, p: Pt, rectangle = false): Ring {
  if (!rectangle || ring.length !== 4) return ring.map((v, i) => (i === index ? { ...p } : v))
  const o = ring[(index + 2) % 4]
  const [x0, x1] = [Math.min(o.x, p.x), Math.max(o.x, p.x)]
  const [y0, y1] = [Math.min(o.y, p.y), Math.max(o.y, p.y)]
  return rectangleRing(x0, y0, x1 - x0, y1 - y0)
}

/** Every point moved by (dx, dy), kept inside a width x height image. */
export function translate(rings: Ring[], dx: number, dy: number, width: number, height: number): Ring[] {
  const all = rings.flat()
  if (!all.length) return rings
  const minX = Math.min(...all.map((p) => p.x))
  const maxX = Math.max(...all.map((p) => p.x))
  const minY = Math.min(...all.map((p) => p.y))
  const maxY = Math.max(...all.map((p) => p.y))
  const cx = Math.max(-minX, Math.min(width - maxX, dx))
  const cy = Math.max(-minY, Math.min(height - maxY, dy))
  return rings.map((r) => r.map((p) => ({ x: p.x + cx, y: p.y + cy })))
}

/** `p` rounded to whole pixels and kept inside a width x height image. */
export function clampPoint(p: Pt, width: number, height: number): Pt {
  return { x: Math.round(Math.max(0, Math.min(width, p.x))), y: Math.round(Math.max(0, Math.min(height, p.y))) }
}

/** Whether a ring drawn by clicks is a polygon: 3 or more distinct vertices, some area. */
export function closable(ring: Ring): boolean {
  return ring.length >= 3 && Math.abs(area(ring)) > 0
}

/** The signed area (shoelace), in square pixels. */
export function area(ring: Ring): number {
  let s = 0
  for (let i = 0; i < ring.length; i++) {
    const a = ring[i]
    const b = ring[(i + 1) % ring.length]
    s += a.x * b.y - b.x * a.y
  }
  return s / 2
}

/** Where the image sits on screen: image point (0, 0) at screen (`x`, `y`), `scale` screen
 * pixels per image pixel. */
export interface View {
  x: number
  y: number
  scale: number
}

export function toScreen(p: Pt, v: View): Pt {
  return { x: v.x + p.x * v.scale, y: v.y + p.y * v.scale }
}

export function toImage(p: Pt, v: View): Pt {
  return { x: (p.x - v.x) / v.scale, y: (p.y - v.y) / v.scale }
}

/** The SVG transform that draws image-pixel children at their place on screen. */
export function svgTransform(v: View): string {
  return `translate(${v.x} ${v.y}) scale(${v.scale})`
}

/** The image region a screen rectangle shows, grown by `margin` (a fraction of each side)
 * and clipped to the image: what to ask the viewport query for. */
export function visibleRegion(v: View, screenW: number, screenH: number, width: number, height: number, margin = 0.25) {
  const a = toImage({ x: 0, y: 0 }, v)
  const b = toImage({ x: screenW, y: screenH }, v)
  const mx = (b.x - a.x) * margin
  const my = (b.y - a.y) * margin
  const x = Math.max(0, Math.floor(a.x - mx))
  const y = Math.max(0, Math.floor(a.y - my))
  const x1 = Math.min(width, Math.ceil(b.x + mx))
  const y1 = Math.min(height, Math.ceil(b.y + my))
  return { x, y, w: Math.max(1, x1 - x), h: Math.max(1, y1 - y) }
}

/** A feature's shapes, for hit tests. */
export interface Drawable {
  id: string
  shapes: Shape[]
}

/** The feature under image point `p`: a point or line within `tolerance` (image pixels)
 * first, else the smallest polygon holding `p`; null over empty image. */
export function featureAt(items: Drawable[], p: Pt, tolerance: number): string | null {
  let best: string | null = null
  let bestArea = Infinity
  for (const item of items) {
    for (const s of item.shapes) {
      if (s.kind === 'point' && Math.hypot(s.at.x - p.x, s.at.y - p.y) <= tolerance) return item.id
      if (s.kind === 'line' && s.points.some((a, i) => i > 0 && segmentDistance(p, s.points[i - 1], a) <= tolerance)) return item.id
      if (s.kind === 'polygon' && insidePolygon(p, s.rings)) {
        const size = Math.abs(area(s.rings[0]))
        if (size < bestArea) {
          best = item.id
          bestArea = size
        }
      }
    }
  }
  return best
}

/** An SVG path of a polygon's rings (holes cut out with fill-rule evenodd). */
export function svgPath(rings: Ring[]): string {
  return rings.map((r) => `M${r.map((p) => `${p.x},${p.y}`).join('L')}Z`).join('')
}
