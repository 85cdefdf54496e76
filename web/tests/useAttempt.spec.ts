import { describe, expect, it } from 'vitest'
import { ApiError } from '../src/api'
import { useAttempt } from '../src/lib/useAttempt'

const fail = (detail: string) => async () => {
  throw new ApiError(409, { detail })
}

describe('useAttempt', () => {
  it('keeps what a failed action threw and clears it when the next action succeeds', async () => {
    const { error, attempt } = useAttempt()
    let saved = 0
    await attempt(fail('the study is locked'))
    expect((error.value as ApiError).status).toBe(409)
    await attempt(async () => {
      saved += 1
    })
    expect(saved).toBe(1)
    expect(error.value).toBeNull()
  })

  it('with keep leaves the earlier error showing after a successful background reload', async () => {
    const { error, attempt } = useAttempt()
    await attempt(fail('first'))
    await attempt(async () => {}, { keep: true })
    expect((error.value as ApiError).problem).toEqual({ detail: 'first' })
    await attempt(fail('second'), { keep: true })
    expect((error.value as ApiError).problem).toEqual({ detail: 'second' })
  })
})

describe('useAttempt once (a submit)', () => {
  it('is pending while it runs and refuses a second submit meanwhile', async () => {
    const { pending, attempt } = useAttempt()
    let release!: () => void
    let runs = 0
    const slow = async () => {
      runs += 1
      await new Promise<void>((r) => (release = r))
    }
    const first = attempt(slow, { once: true })
    expect(pending.value).toBe(true)
    await attempt(slow, { once: true }) // a double click: refused at once
    expect(runs).toBe(1)
    let loaded = false
    await attempt(async () => { loaded = true }) // loads and nested reloads still run
    expect(loaded).toBe(true)
    release()
    await first
    expect(pending.value).toBe(false)
    void attempt(slow, { once: true })
    expect(runs).toBe(2)
    release()
  })

  it('is no longer pending after a failed submit, and keeps its error', async () => {
    const { pending, error, attempt } = useAttempt()
    await attempt(fail('taken'), { once: true })
    expect(pending.value).toBe(false)
    expect((error.value as ApiError).status).toBe(409)
  })
})
