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
