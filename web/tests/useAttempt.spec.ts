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
