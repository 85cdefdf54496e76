// Deep zoom over the render service: each tile of a DeepZoom pyramid is one render URL
// (crop of the original at that level's scale, resized to the tile), so any image the
// server reads (plain images and whole slides alike) is zoomable without a stored pyramid;
// renders are cached by the server (ETag) and by the browser.

export interface TileGrid {
  width: number
  height: number
  tileSize: number
}

/** The highest DeepZoom level: the one at full resolution. */
export function maxLevel(width: number, height: number): number {
  return Math.ceil(Math.log2(Math.max(width, height, 1)))
}

export interface TileBox {
  left: number
  top: number
  width: number
  height: number
  outWidth: number
  outHeight: number
}

/** The source rectangle of tile (x, y) at `level` and the tile's size in pixels, or null
 * outside the image. */
export function tileBox(grid: TileGrid, level: number, x: number, y: number): TileBox | null {
  const scale = 2 ** (level - maxLevel(grid.width, grid.height))
  const levelW = Math.max(1, Math.ceil(grid.width * scale))
  const levelH = Math.max(1, Math.ceil(grid.height * scale))
  const px = x * grid.tileSize
  const py = y * grid.tileSize
  if (px >= levelW || py >= levelH || x < 0 || y < 0) return null
  const outWidth = Math.min(grid.tileSize, levelW - px)
  const outHeight = Math.min(grid.tileSize, levelH - py)
  const left = Math.min(Math.floor(px / scale), grid.width - 1)
  const top = Math.min(Math.floor(py / scale), grid.height - 1)
  const width = Math.max(1, Math.min(Math.ceil(outWidth / scale), grid.width - left))
  const height = Math.max(1, Math.min(Math.ceil(outHeight / scale), grid.height - top))
  return { left, top, width, height, outWidth, outHeight }
}

/** The render URL of tile (x, y) at `level` of image `imageId`. */
export function tileUrl(imageId: string, grid: TileGrid, level: number, x: number, y: number): string {
  const box = tileBox(grid, level, x, y)
  if (box === null) return ''
  const q = new URLSearchParams({
    crop: `${box.left},${box.top},${box.width},${box.height}`,
    w: String(box.outWidth),
    h: String(box.outHeight),
    fit: 'fill',
    enlarge: 'true',
    format: 'webp',
    q: '85',
  })
  return `/v1/images/${encodeURIComponent(imageId)}/render?${q.toString().replace(/%2C/g, ',')}`
}

/** An OpenSeadragon custom tile source for `imageId` (width x height pixels). */
export function renderTileSource(imageId: string, width: number, height: number, tileSize = 512) {
  const grid = { width, height, tileSize }
  return {
    width,
    height,
    tileSize,
    tileOverlap: 0,
    minLevel: Math.max(0, maxLevel(width, height) - 12),
    maxLevel: maxLevel(width, height),
    getTileUrl: (level: number, x: number, y: number) => tileUrl(imageId, grid, level, x, y),
  }
}
