// A scale bar whose length is a round number of micrometres (1, 2 or 5 x 10^k).

export interface ScaleBar {
  micrometres: number
  pixels: number
  label: string
}

export function formatLength(um: number): string {
  if (um >= 1000) return `${+(um / 1000).toPrecision(3)} mm`
  if (um >= 1) return `${+um.toPrecision(3)} µm`
  return `${+(um * 1000).toPrecision(3)} nm`
}

/**
 * The bar for a view where one image pixel is `screenPerImagePx` screen pixels and one
 * image pixel is `umPerPixel` micrometres: the longest round length no wider than
 * `maxPx` screen pixels. Null without a known pixel size.
 */
export function scaleBar(
  screenPerImagePx: number,
  umPerPixel: number | null | undefined,
  maxPx = 160,
): ScaleBar | null {
  if (!umPerPixel || umPerPixel <= 0 || !(screenPerImagePx > 0)) return null
  const pxPerUm = screenPerImagePx / umPerPixel
  const maxUm = maxPx / pxPerUm
  const exp = Math.floor(Math.log10(maxUm))
  let best = 10 ** exp
  for (const step of [2, 5, 10]) {
    if (step * 10 ** exp <= maxUm) best = step * 10 ** exp
  }
  return { micrometres: best, pixels: best * pxPerUm, label: formatLength(best) }
}
