import { describe, expect, it } from 'vitest'
import { channelQuery, defaultChannels, hasChannels } from '../src/lib/channels'

describe('channel toggles', () => {
  it('show for fluorescence and for more than three channels, not for RGBA', () => {
    expect(hasChannels(5, 'multiband')).toBe(true)
    expect(hasChannels(4, 'multiband')).toBe(true)
    expect(hasChannels(4, 'srgb')).toBe(false) // alpha
    expect(hasChannels(3, 'srgb')).toBe(false)
    expect(hasChannels(3, 'srgb', 'fluorescence')).toBe(true)
  })

  it('render the visible channels in their colours', () => {
    const channels = defaultChannels(4)
    expect(channelQuery(channels)).toBe('channels=0:0000ff,1:00ff00,2:ff0000,3:ff00ff')
    channels[1].visible = false
    channels[2].colour = '#FFAA00'
    expect(channelQuery(channels)).toBe('channels=0:0000ff,2:ffaa00,3:ff00ff')
    expect(channelQuery(channels.map((c) => ({ ...c, visible: false })))).toBe('channels=none')
    expect(channelQuery([])).toBe('')
  })

  it('keep an RGB fluorescence image in its own colours, without its alpha', () => {
    expect(channelQuery(defaultChannels(4, 'srgb'))).toBe('channels=0:ff0000,1:00ff00,2:0000ff')
    expect(defaultChannels(5, 'multiband')).toHaveLength(5)
  })
})
