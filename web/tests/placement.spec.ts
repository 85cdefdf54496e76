import { describe, expect, it } from 'vitest'
import { describeRegion, placement, regionToAnalyse } from '../src/lib/placement'

describe('placement of a result over its image', () => {
  it('covers the whole image when the result has no region', () => {
    expect(placement(null, 4000)).toEqual({ x: 0, y: 0, width: 1 })
    expect(placement(undefined, 4000)).toEqual({ x: 0, y: 0, width: 1 })
  })

  it('puts a region result where the region is, in viewport units (image width = 1)', () => {
    // a 2048² region in the middle of a 16,000 x 12,000 slide
    const p = placement({ left: 6976, top: 4976, width: 2048, height: 2048 }, 16000)
    expect(p.x).toBeCloseTo(0.436)
    expect(p.y).toBeCloseTo(0.311) // y is in widths too: 4976 / 16000
    expect(p.width).toBeCloseTo(0.128)
    // its bottom-right corner lands on the slide's pixel (9024, 7024): OpenSeadragon
    // gives the overlay the height its aspect says (2048 / 2048 of its width)
    expect((p.x + p.width) * 16000).toBeCloseTo(9024)
    expect((p.y + p.width * (2048 / 2048)) * 16000).toBeCloseTo(7024)
  })
})

describe('the region to analyse', () => {
  it('is a view clamped to the image in whole pixels', () => {
    expect(regionToAnalyse({ x: -10.4, y: 20.6, w: 500, h: 300 }, 400, 250)).toEqual({ left: 0, top: 20, width: 400, height: 230 })
  })

  it('is a drawn box, whichever corner it was drawn from', () => {
    expect(regionToAnalyse([300, 200, 100.5, 50], 1000, 1000)).toEqual({ left: 100, top: 50, width: 200, height: 150 })
  })

  it('is nothing when the view is off the image', () => {
    expect(regionToAnalyse({ x: 500, y: 0, w: 100, h: 100 }, 400, 250)).toBeNull()
  })

  it('reads as a size and a place', () => {
    expect(describeRegion({ left: 6976, top: 4976, width: 2048, height: 2048 })).toBe('2,048 × 2,048 px at 6,976, 4,976')
  })
})
