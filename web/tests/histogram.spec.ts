import { describe, expect, it } from 'vitest'
import { histogram, numericColumns, objectAt, pickObject } from '../src/lib/histogram'

describe('measurement histograms', () => {
  it('bins every group over the same edges, the maximum in the last bin', () => {
    const h = histogram([[0, 1, 2, 3], [3, 3, 10]], 5)
    expect(h.edges).toEqual([0, 2, 4, 6, 8, 10])
    expect(h.counts).toEqual([[2, 2, 0, 0, 0], [0, 2, 0, 0, 1]])
  })

  it('survives constant and missing values', () => {
    expect(histogram([[5, 5, NaN]], 2).counts).toEqual([[0, 2]])
    expect(histogram([[], [NaN]]).edges).toEqual([])
  })

  it('offers measurements, not labels, positions or boxes', () => {
    const rows = [{ label: 1, centroid_row: 2, bbox_min_row: 0, area_px: 10, eccentricity: 0.2, name: 'x' }]
    expect(numericColumns(rows)).toEqual(['area_px', 'eccentricity'])
  })
})

describe('picking an object', () => {
  const a = { label: 1, bbox_min_row: 0, bbox_min_col: 0, bbox_max_row: 10, bbox_max_col: 10, centroid_row: 5, centroid_col: 5 }
  const b = { label: 2, bbox_min_row: 5, bbox_min_col: 5, bbox_max_row: 20, bbox_max_col: 20, centroid_row: 12, centroid_col: 12 }

  it('finds the object whose box holds the point, the nearest centroid when boxes overlap', () => {
    expect(objectAt([a, b], 2, 2)?.label).toBe(1)
    expect(objectAt([a, b], 9, 9)?.label).toBe(2) // in both boxes, nearer b's centre
    expect(objectAt([a, b], 30, 30)).toBeNull()
  })

  it('picks one object with a click, several with Shift-click, and unpicks with a second', () => {
    const [a, b] = [{ label: 1 }, { label: 2 }]
    expect(pickObject([a], b, false)).toEqual([b])
    expect(pickObject([a], b, true)).toEqual([a, b])
    expect(pickObject([a, b], a, true)).toEqual([b])
  })
})
