import { describe, expect, it } from 'vitest'
import OpenSeadragon from 'openseadragon'
import { dziTileUrl, dziUrl, maxLevel } from '../src/lib/tiles'

// The descriptor as the server writes it (src/pixelmill/imaging/pyramid.py)
const DESCRIPTOR =
  '<?xml version="1.0" encoding="UTF-8"?>\n<Image xmlns="http://schemas.microsoft.com/deepzoom/2008" ' +
  'Format="jpeg" Overlap="1" TileSize="510"><Size Width="1500" Height="1000"/></Image>\n'

// eslint-disable-next-line @typescript-eslint/no-explicit-any
function openSource(url: string): any {
  const xml = new DOMParser().parseFromString(DESCRIPTOR, 'application/xml')
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const Dzi = (OpenSeadragon as any).DziTileSource
  return new Dzi(Dzi.prototype.configure.call({}, xml, url))
}

describe('deep zoom over the DZI tile route', () => {
  it('has its full-resolution level where the longest side fits', () => {
    expect(maxLevel(1000, 600)).toBe(10) // 2^10 = 1024 >= 1000
    expect(maxLevel(1024, 1)).toBe(10)
    expect(maxLevel(1025, 1)).toBe(11)
  })

  it('points OpenSeadragon at the descriptor of the image', () => {
    expect(dziUrl('img 1')).toBe('/v1/images/img%201/dzi.dzi')
    expect(dziUrl('abc', '?expires=9&sig=x')).toBe('/v1/images/abc/dzi.dzi?expires=9&sig=x')
  })

  it('makes tile URLs the server answers, from the descriptor OpenSeadragon reads', () => {
    const source = openSource(dziUrl('abc'))
    expect([source.width, source.height, source.getTileWidth(11), source.tileOverlap]).toEqual([1500, 1000, 510, 1])
    expect(source.maxLevel).toBe(maxLevel(1500, 1000))
    expect(source.getTileUrl(11, 2, 1)).toBe(dziTileUrl('abc', 11, 2, 1))
    expect(source.getTileUrl(11, 2, 1)).toBe('/v1/images/abc/dzi_files/11/2_1.jpeg')
  })

  it('carries a shared link’s signature to every tile', () => {
    const source = openSource(dziUrl('abc', 'expires=9&sig=x'))
    expect(source.getTileUrl(3, 0, 0)).toBe('/v1/images/abc/dzi_files/3/0_0.jpeg?expires=9&sig=x')
  })
})
