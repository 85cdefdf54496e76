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
const RGB = ['#ff0000', '#00ff00', '#0000ff']
const RGB_INTERPRETATIONS = ['srgb', 'rgb16', 'rgb']

/** The channel panel shows for fluorescence studies and images with more than three
 * channels (an RGBA image's fourth band is its alpha, not a channel). */
export function hasChannels(bands: number, interpretation = '', modality = ''): boolean {
  if (modality === 'fluorescence') return bands >= 1
  const rgba = bands === 4 && RGB_INTERPRETATIONS.includes(interpretation)
  return bands > 3 && !rgba
}

/** Every channel visible, in the default colours (an RGB image's own red, green, blue; its
 * alpha band is no channel). */
export function defaultChannels(bands: number, interpretation = ''): Channel[] {
  const rgb = RGB_INTERPRETATIONS.includes(interpretation) && bands <= 4
  const n = rgb ? Math.min(bands, 3) : Math.min(bands, 16)
  const colours = rgb ? RGB : COLOURS
  return Array.from({ length: n }, (_, index) => ({ index, visible: true, colour: colours[index % colours.length] }))
}

/** The render query of these channels ('' when none is set: the image as it is). */
export function channelQuery(channels: Channel[]): string {
  const shown = channels.filter((c) => c.visible)
  if (!channels.length) return ''
  if (!shown.length) return 'channels=none'
  return `channels=${shown.map((c) => `${c.index}:${c.colour.replace('#', '').toLowerCase()}`).join(',')}`
}
