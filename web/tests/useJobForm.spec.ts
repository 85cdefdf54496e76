import { afterEach, describe, expect, it, vi } from 'vitest'
import { ApiError, type Job } from '../src/api'
import type { JsonSchema } from '../src/lib/schemaForm'
import { useJobForm } from '../src/lib/useJobForm'
import schemas from './fixtures/schemas.json'

const answer = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } })

afterEach(() => vi.unstubAllGlobals())

describe('useJobForm', () => {
  it('loads the schema defaults, takes edits and submits only what changed', () => {
    const f = useJobForm()
    f.load(schemas.training_loop as JsonSchema)
    expect(f.values.value['model']).toBe('nuclei')
    f.set('model', 'cells')
    expect(f.params()).toEqual({ model: 'cells' })
    expect(f.errors.value).toEqual({})
  })

  it("lists the server's per-field errors of a refused submit", async () => {
    const f = useJobForm()
    await f.attempt(async () => {
      throw new ApiError(422, { detail: 'invalid', errors: [{ loc: 'params.sigma', msg: 'must be > 0' }] })
    })
    expect(f.serverErrors.value).toEqual([{ loc: 'params.sigma', msg: 'must be > 0' }])
  })

  it('cancels the running job and hands the cancelled job on', async () => {
    const cancelled = { id: 'j1', state: 'cancelled' } as Job
    vi.stubGlobal('fetch', vi.fn(async () => answer(200, cancelled)))
    const seen: Job[] = []
    const f = useJobForm((j) => void seen.push(j))
    f.job.value = { id: 'j1', state: 'running' } as Job
    expect(f.running.value).toBe(true)
    await f.cancel()
    expect(f.error.value).toBeNull()
    expect(f.running.value).toBe(false)
    expect(seen.map((j) => j.state)).toEqual(['cancelled'])
  })
})
