import { describe, expect, it } from 'vitest'
import { maxLevel, renderTileSource, tileBox, tileUrl } from '../src/lib/tiles'

describe('deep zoom tiles over the render service', () => {
  const grid = { width: 1000, height: 600, tileSize: 256 }

  it('has its full-resolution level where the longest side fits', () => {
    expect(maxLevel(1000, 600)).toBe(10) // 2^10 = 1024 >= 1000
    expect(maxLevel(1024, 1)).toBe(10)
    expect(maxLevel(1025, 1)).toBe(11)
  })

  it('covers every source pixel exactly once at full resolution', () => {
    const covered = new Uint8Array(grid.width * grid.height)
    for (let y = 0; ; y++) {
      if (!tileBox(grid, 10, 0, y)) break
      for (let x = 0; ; x++) {
        const b = tileBox(grid, 10, x, y)
        if (!b) break
        expect([b.outWidth, b.outHeight]).toEqual([b.width, b.height]) // 1:1
        for (let r = b.top; r < b.top + b.height; r++)
          for (let c = b.left; c < b.left + b.width; c++) covered[r * grid.width + c] += 1
      }
    }
    expect(covered.every((n) => n === 1)).toBe(true)
  })

  it('halves the scale per level and stays inside the image', () => {
    const b = tileBox(grid, 9, 1, 0)! // level 9: 500 x 300 pixels
    expect(b).toEqual({ left: 512, top: 0, width: 488, height: 512, outWidth: 244, outHeight: 256 })
    expect(tileBox(grid, 9, 1, 1)).toEqual({ left: 512, top: 512, width: 488, height: 88, outWidth: 244, outHeight: 44 })
    expect(tileBox(grid, 9, 2, 0)).toBeNull()
    const whole = tileBox(grid, 2, 0, 0)! // level 2: 4 x 3 pixels, one tile
    expect(whole).toMatchObject({ left: 0, top: 0, width: 1000, height: 600, outWidth: 4, outHeight: 3 })
  })

  it('asks the render endpoint for the crop, resized to the tile', () => {
    const url = tileUrl('img 1', grid, 9, 1, 0)
    expect(url.startsWith('/v1/images/img%201/render?')).toBe(true)
    const q = new URLSearchParams(url.split('?')[1])
    expect(q.get('crop')).toBe('512,0,488,512')
    expect([q.get('w'), q.get('h'), q.get('fit'), q.get('format')]).toEqual(['244', '256', 'fill', 'webp'])
    const source = renderTileSource('img', 1000, 600)
    expect(source.getTileUrl(10, 0, 0)).toContain('crop=0,0,512,512')
  })
})
