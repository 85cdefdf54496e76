// @vitest-environment node
import { describe, expect, it } from 'vitest'
import { box, groupValues, NO_GROUP, quantile } from '../src/lib/boxplot'

describe('quartiles', () => {
  it('interpolates between ranks like numpy.percentile', () => {
    // numpy.percentile([1, 2, 3, 4], [25, 50, 75]) == [1.75, 2.5, 3.25]
    const v = [1, 2, 3, 4]
    expect([0.25, 0.5, 0.75].map((p) => quantile(v, p))).toEqual([1.75, 2.5, 3.25])
    expect(quantile([7], 0.5)).toBe(7)
    expect(quantile([], 0.5)).toBeNaN()
  })

  it('draws whiskers to the furthest values within 1.5 IQR and lists the rest as outliers', () => {
    const b = box([10, 1, 2, 3, 4, 5, 6, 7, 8, 9, 100, NaN])!
    expect(b).toMatchObject({ n: 11, min: 1, max: 100, median: 6, q1: 3.5, q3: 8.5 })
    expect([b.low, b.high]).toEqual([1, 10]) // fences at -4 and 16
    expect(b.outliers).toEqual([100])
  })

  it('has no box without values', () => {
    expect(box([NaN, Infinity])).toBeNull()
  })
})

describe('groups', () => {
  it('orders groups naturally with the unlabelled last', () => {
    const g = groupValues([
      { group: 'arm 10', value: 1 },
      { group: null, value: 2 },
      { group: 'arm 2', value: 3 },
      { group: 'arm 2', value: 4 },
      { group: '', value: 5 },
    ])
    expect([...g.keys()]).toEqual(['arm 2', 'arm 10', NO_GROUP])
    expect(g.get('arm 2')).toEqual([3, 4])
    expect(g.get(NO_GROUP)).toEqual([2, 5])
  })
})
