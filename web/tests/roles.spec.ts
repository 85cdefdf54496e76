import { describe, expect, it } from 'vitest'
import { can } from '../src/lib/roles'

describe('role gates of the UI', () => {
  it('shows the run button to analysts and owners of an active study only', () => {
    expect(can('viewer', 'analysis.run')).toBe(false)
    expect(can('annotator', 'analysis.run')).toBe(false)
    expect(can('analyst', 'analysis.run')).toBe(true)
    expect(can('owner', 'analysis.run', 'locked')).toBe(false)
    expect(can(null, 'analysis.run')).toBe(false)
    expect(can(null, 'analysis.run', 'active', true)).toBe(true) // site admin
  })

  it('gives annotators the drawing tools and the promote button, not viewers', () => {
    expect(can('annotator', 'annotation.create')).toBe(true)
    expect(can('annotator', 'analysis.promote')).toBe(true)
    expect(can('viewer', 'annotation.create')).toBe(false)
    expect(can('viewer', 'analysis.promote')).toBe(false)
    expect(can('owner', 'analysis.promote', 'archived')).toBe(false)
  })

  it('lets owners manage members even when the study is locked', () => {
    expect(can('owner', 'member.manage', 'locked')).toBe(true)
    expect(can('analyst', 'member.manage')).toBe(false)
  })

  it('offers training from annotations to analysts and owners, locked studies too', () => {
    expect(can('viewer', 'model.train')).toBe(false)
    expect(can('annotator', 'model.train')).toBe(false)
    expect(can('analyst', 'model.train')).toBe(true)
    expect(can('owner', 'model.train', 'locked')).toBe(true)
  })
})
