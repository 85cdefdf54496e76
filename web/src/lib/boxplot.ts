// Box plots of per-object measurements by group (a patient attribute: arm, sex...):
// Tukey boxes (quartiles, whiskers to the furthest value within 1.5 IQR, outliers
// beyond), computed here and drawn as Chart.js floating bars.

export interface Box {
  n: number
  min: number
  q1: number
  median: number
  q3: number
  max: number
  /** the whiskers' ends: the furthest values within 1.5 IQR of the box */
  low: number
  high: number
  outliers: number[]
}

/** The p-quantile of sorted values, linear between the closest ranks (R type 7, as
 * numpy's default, so the numbers match a pandas/numpy check). */
export function quantile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN
  const h = (sorted.length - 1) * p
  const lo = Math.floor(h)
  const hi = Math.min(lo + 1, sorted.length - 1)
  return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo])
}

/** The box of the finite values (null when there are none). */
export function box(values: number[]): Box | null {
  const v = values.filter(Number.isFinite).sort((a, b) => a - b)
  if (!v.length) return null
  const q1 = quantile(v, 0.25)
  const q3 = quantile(v, 0.75)
  const fence = 1.5 * (q3 - q1)
  const inside = v.filter((x) => x >= q1 - fence && x <= q3 + fence)
  return {
    n: v.length,
    min: v[0],
    q1,
    median: quantile(v, 0.5),
    q3,
    max: v[v.length - 1],
    low: inside[0],
    high: inside[inside.length - 1],
    outliers: v.filter((x) => x < q1 - fence || x > q3 + fence),
  }
}

export const NO_GROUP = '(none)'

/** Values grouped by a label, groups in natural order with the unlabelled last. */
export function groupValues(items: { group: string | null | undefined; value: number }[]): Map<string, number[]> {
  const groups = new Map<string, number[]>()
  for (const { group, value } of items) {
    const g = group == null || group === '' ? NO_GROUP : group
    if (!groups.has(g)) groups.set(g, [])
    groups.get(g)!.push(value)
  }
  const names = [...groups.keys()].sort((a, b) =>
    a === NO_GROUP ? 1 : b === NO_GROUP ? -1 : a.localeCompare(b, undefined, { numeric: true }),
  )
  return new Map(names.map((n) => [n, groups.get(n)!]))
}
