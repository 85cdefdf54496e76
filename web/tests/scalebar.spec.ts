import { describe, expect, it } from 'vitest'
import { formatLength, scaleBar } from '../src/lib/scalebar'

describe('scale bar', () => {
  it('is a round length no wider than the limit', () => {
    // 0.5 µm per pixel shown 1:1: 2 screen px per µm, 160 px at most -> 50 µm (100 px)
    expect(scaleBar(1, 0.5, 160)).toEqual({ micrometres: 50, pixels: 100, label: '50 µm' })
    // zoomed out 8x: 0.25 px per µm -> 500 µm (125 px)
    expect(scaleBar(1 / 8, 0.5, 160)).toMatchObject({ micrometres: 500, label: '500 µm' })
    // zoomed far in: sub-micrometre
    expect(scaleBar(400, 0.25, 160)?.label).toBe('100 nm')
  })

  it('is absent when the pixel size is unknown', () => {
    expect(scaleBar(1, null)).toBeNull()
    expect(scaleBar(1, 0)).toBeNull()
  })

  it('speaks in mm for long bars', () => {
    expect(formatLength(2000)).toBe('2 mm')
  })
})
