// Where an analysis result lies on the image it was made of. A result of a whole image
// covers it; a result of a region (a slide analysed a rectangle at a time) covers only
// that rectangle, and OpenSeadragon must draw it there. Pure: Vitest-tested.

/** A rectangle of an image in full-resolution pixels, as the API names it. */
export interface PixelRegion {
  left: number
  top: number
  width: number
  height: number
}

/** What OpenSeadragon's `addTiledImage` takes to place an item: viewport units, in which
 * the base image is 1 wide (so y runs to height / width). */
export interface Placement {
  x: number
  y: number
  width: number
}

/** The placement of a result covering `region` of a base image `baseWidth` pixels wide;
 * no region: the whole base image. */
export function placement(region: PixelRegion | null | undefined, baseWidth: number): Placement {
  if (!region || baseWidth <= 0) return { x: 0, y: 0, width: 1 }
  return { x: region.left / baseWidth, y: region.top / baseWidth, width: region.width / baseWidth }
}

/** The region to analyse from a box `[x0, y0, x1, y1]` or a view `{x, y, w, h}` (image
 * pixels, possibly fractional or past the edges): whole pixels inside a `width` x
 * `height` image, at least 1 x 1; null when the box misses the image. */
export function regionToAnalyse(
  box: [number, number, number, number] | { x: number; y: number; w: number; h: number },
  width: number,
  height: number,
): PixelRegion | null {
  const [x0, y0, x1, y1] = Array.isArray(box) ? box : [box.x, box.y, box.x + box.w, box.y + box.h]
  const left = Math.max(0, Math.floor(Math.min(x0, x1)))
  const top = Math.max(0, Math.floor(Math.min(y0, y1)))
  const right = Math.min(width, Math.ceil(Math.max(x0, x1)))
  const bottom = Math.min(height, Math.ceil(Math.max(y0, y1)))
  if (right - left < 1 || bottom - top < 1) return null
  return { left, top, width: right - left, height: bottom - top }
}

/** "2,048 × 2,048 px at 6,976, 4,976" for a dialog's title. */
export function describeRegion(r: PixelRegion): string {
  const n = (v: number) => v.toLocaleString('en')
  return `${n(r.width)} × ${n(r.height)} px at ${n(r.left)}, ${n(r.top)}`
}
