import { mount } from '@vue/test-utils'
import { describe, expect, it } from 'vitest'
import { defineComponent, h } from 'vue'
import type { Job } from '../src/api'
import JobRow from '../src/components/JobRow.vue'

const job: Job = {
  id: 'job_0123456789abcdef',
  kind: 'analysis',
  state: 'succeeded',
  inputs: ['a', 'b', 'c'],
  params: {},
  progress: { total: 3, succeeded: 3, failed: 0, fraction: 1 },
  error: null,
  created_at: '2026-01-02T03:04:05Z',
  finished_at: '2026-01-02T03:05:00Z',
}

describe('JobRow', () => {
  it('shows the short id, kind, image count and state, then the extra cells given', () => {
    const Table = defineComponent(() => () =>
      h('table', [h('tbody', [h(JobRow, { job }, { default: () => [h('td', { class: 'extra' }, 'Cancel')] })])]),
    )
    const cells = mount(Table).findAll('td')
    expect(cells.map((c) => c.text()).slice(0, 3)).toEqual(['job_01234567', 'analysis', '3'])
    expect(cells[4].find('[data-state]').attributes('data-state')).toBe('succeeded')
    expect(cells[5].classes()).toContain('extra')
    expect(cells).toHaveLength(6)
  })
})
