// Histograms of per-object measurements (shared bins, so groups compare) and the numeric
// columns of an objects table.

export type Row = Record<string, unknown>

/** Columns whose values are numbers in the first row (labels, ids and bboxes left out). */
export function numericColumns(rows: Row[]): string[] {
  const first = rows[0] ?? {}
  return Object.keys(first).filter(
    (k) => typeof first[k] === 'number' && k !== 'label' && !k.startsWith('bbox_') && !k.startsWith('centroid_'),
  )
}

export interface Histogram {
  edges: number[]
  counts: number[][]
}

/** Counts of each group's finite values in `bins` equal bins over all groups' range. */
export function histogram(groups: number[][], bins = 20): Histogram {
  const all = groups.flat().filter(Number.isFinite)
  if (!all.length) return { edges: [], counts: groups.map(() => []) }
  let lo = Math.min(...all)
  let hi = Math.max(...all)
  if (lo === hi) {
    lo -= 0.5
    hi += 0.5
  }
  const width = (hi - lo) / bins
  const edges = Array.from({ length: bins + 1 }, (_, i) => lo + i * width)
  const counts = groups.map((g) => {
    const c = new Array<number>(bins).fill(0)
    for (const v of g) {
      if (!Number.isFinite(v)) continue
      c[Math.min(bins - 1, Math.floor((v - lo) / width))] += 1
    }
    return c
  })
  return { edges, counts }
}

/** The object under image point (x, y): among those whose bounding box holds it, the one
 * with the nearest centroid (objects tables: bbox_min/max_row/col, centroid_row/col). */
export function objectAt(rows: Row[], x: number, y: number): Row | null {
  let best: Row | null = null
  let bestD = Infinity
  for (const r of rows) {
    const [r0, c0, r1, c1] = [r.bbox_min_row, r.bbox_min_col, r.bbox_max_row, r.bbox_max_col].map(Number)
    if (!(y >= r0 && y < r1 && x >= c0 && x < c1)) continue
    const d = (Number(r.centroid_row) - y) ** 2 + (Number(r.centroid_col) - x) ** 2
    if (d < bestD) {
      bestD = d
      best = r
    }
  }
  return best
}

/** The objects picked after a click on `row`: just it, or with Shift (`add`) the others
 * plus it — or without it when it was picked (a second Shift-click unpicks). */
export function pickObject(picked: Row[], row: Row, add: boolean): Row[] {
  if (!add) return [row]
  const others = picked.filter((r) => r.label !== row.label)
  return others.length < picked.length ? others : [...others, row]
}
