// Channel toggles of a multi-channel (fluorescence) image: which channels show, in what
// colour, as the render parameter `channels=index:rrggbb,...` (an additive composite).

export interface Channel {
  index: number
  visible: boolean
  /** '#rrggbb' */
  colour: string
}

/** The usual fluorescence colours: DAPI blue, then green, red, magenta, cyan, yellow, grey. */
const COLOURS = ['#0000ff', '#00ff00', '#ff0000', '#ff00ff', '#00ffff', '#ffff00', '#ffffff']

/** The channel panel shows for fluorescence studies and images with more than three
 * channels (an RGBA image's fourth band is its alpha, not a channel). */
export function hasChannels(bands: number, interpretation = '', modality = ''): boolean {
  if (modality === 'fluorescence') return bands >= 1
  const rgba = bands === 4 && ['srgb', 'rgb16', 'rgb'].includes(interpretation)
  return bands > 3 && !rgba
}

/** Every channel visible, in the default colours. */
export function defaultChannels(bands: number): Channel[] {
  return Array.from({ length: Math.min(bands, 16) }, (_, index) => ({ index, visible: true, colour: COLOURS[index % COLOURS.length] }))
}

/** The render query of these channels ('' when none is set: the image as it is). */
export function channelQuery(channels: Channel[]): string {
  const shown = channels.filter((c) => c.visible)
  if (!channels.length) return ''
  if (!shown.length) return 'channels=none'
  return `channels=${shown.map((c) => `${c.index}:${c.colour.replace('#', '').toLowerCase()}`).join(',')}`
}
