import { flushPromises, mount } from '@vue/test-utils'
import { describe, expect, it } from 'vitest'
import { ApiError, type ImageInfo } from '../src/api'
import UploadDrop from '../src/components/UploadDrop.vue'

function file(name: string) {
  return new File([new Uint8Array([1, 2, 3])], name, { type: 'image/png' })
}

describe('UploadDrop', () => {
  it('uploads each file on its own: a bad file shows its error, the others finish', async () => {
    const upload = async (f: File, progress: (x: number) => void): Promise<ImageInfo> => {
      progress(0.5)
      if (f.name === 'bad.png') throw new ApiError(415, { detail: 'bad.png is not an image format we read' })
      return { id: `id-${f.name}`, width: 1, height: 1, format: 'png', created_at: '' }
    }
    const wrapper = mount(UploadDrop, { props: { upload } })
    await (wrapper.vm as unknown as { start: (f: File[]) => Promise<void> }).start([file('a.png'), file('bad.png'), file('c.png')])
    await flushPromises()
    const rows = wrapper.findAll('li')
    expect(rows.map((r) => r.attributes('data-state'))).toEqual(['done', 'failed', 'done'])
    expect(rows[1].find('[role=alert]').text()).toBe('bad.png is not an image format we read')
    const done = wrapper.emitted('done')![0][0] as ImageInfo[]
    expect(done.map((i) => i.id).sort()).toEqual(['id-a.png', 'id-c.png'])
  })

  it('reports a failure of the follow-up step (adding to the study) as that file’s error', async () => {
    const upload = async (): Promise<ImageInfo> => ({ id: 'x', width: 1, height: 1, format: 'png', created_at: '' })
    const after = async () => {
      throw new ApiError(403, { detail: 'the study is locked' })
    }
    const wrapper = mount(UploadDrop, { props: { upload, after } })
    await (wrapper.vm as unknown as { start: (f: File[]) => Promise<void> }).start([file('a.png')])
    await flushPromises()
    expect(wrapper.find('li').attributes('data-state')).toBe('failed')
    expect(wrapper.find('[role=alert]').text()).toBe('the study is locked')
  })

  it('has a labelled file picker', () => {
    const wrapper = mount(UploadDrop)
    const input = wrapper.find('input[type=file]')
    expect(wrapper.find(`label[for=${input.attributes('id')}]`).text()).toBe('Choose files…')
  })
})
