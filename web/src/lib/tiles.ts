// Deep zoom over the server's DZI tile route (docs/api.md, "Deep-zoom tiles"):
// OpenSeadragon reads the descriptor `/v1/images/{id}/dzi.dzi` (size, tile size, format)
// and asks for `/v1/images/{id}/dzi_files/{level}/{col}_{row}.{format}`. The server reads
// each tile from the best level the original holds (a whole slide's reduced pages, a
// JPEG's shrink-on-load), so plain images and slides over the render pixel limit alike
// open and pan; tiles are cached by the server (ETag) and by the browser.

/** The highest DeepZoom level: the one at full resolution. */
export function maxLevel(width: number, height: number): number {
  return Math.ceil(Math.log2(Math.max(width, height, 1)))
}

/**
 * The descriptor URL of image `imageId`, the tile source OpenSeadragon opens. A shared
 * link's signature (`expires=…&kid=…&sig=…`, signed over `/v1/images/{id}/dzi`) goes in
 * `signedQuery`: OpenSeadragon adds the descriptor's query to every tile URL.
 */
export function dziUrl(imageId: string, signedQuery = ''): string {
  const query = signedQuery.replace(/^\?/, '')
  return `/v1/images/${encodeURIComponent(imageId)}/dzi.dzi${query ? `?${query}` : ''}`
}

/** The URL of one tile, as OpenSeadragon makes it from the descriptor's URL. */
export function dziTileUrl(imageId: string, level: number, col: number, row: number, format = 'jpeg'): string {
  return `/v1/images/${encodeURIComponent(imageId)}/dzi_files/${level}/${col}_${row}.${format}`
}

// Render tiles: each tile one /render URL (crop at that level's scale, resized to the
// tile). Used where a tile needs render parameters the DZI route does not take, e.g. a
// fluorescence channel composite (`channels=`).

export interface TileGrid {
  width: number
  height: number
  tileSize: number
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
