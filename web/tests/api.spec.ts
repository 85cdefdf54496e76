import { afterEach, describe, expect, it, vi } from 'vitest'
import { ApiError, csrfToken, errorMessage, post, problemMessage } from '../src/api'

function answer(status: number, body: unknown, type = 'application/problem+json') {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': type } })
}

describe('api client', () => {
  afterEach(() => {
    vi.unstubAllGlobals()
    document.cookie = 'pm_csrf=; expires=Thu, 01 Jan 1970 00:00:00 GMT'
  })

  it('shows a problem by its detail, never as a dump', async () => {
    vi.stubGlobal('fetch', vi.fn(async () => answer(422, { type: 'x', title: 'Invalid parameter', status: 422, detail: 'name is too long' })))
    const err = (await post('/v1/studies', { name: 'x' }).catch((e) => e)) as ApiError
    expect(err).toBeInstanceOf(ApiError)
    expect(err.status).toBe(422)
    expect(errorMessage(err)).toBe('name is too long')
  })

  it('falls back to the title, then to a plain sentence', () => {
    expect(problemMessage(403, { title: 'Forbidden' })).toBe('Forbidden')
    expect(problemMessage(502, {})).toBe('The request failed (HTTP 502).')
    expect(problemMessage(0, null)).toContain('cannot be reached')
  })

  it('echoes the CSRF cookie on unsafe requests only', async () => {
    document.cookie = 'pm_csrf=tok%2Ben'
    expect(csrfToken()).toBe('tok+en')
    const fetch = vi.fn(async () => answer(201, { id: 's1' }, 'application/json'))
    vi.stubGlobal('fetch', fetch)
    expect(await post('/v1/studies', { name: 'A' })).toEqual({ id: 's1' })
    const [, init] = fetch.mock.calls[0] as unknown as [string, RequestInit]
    expect((init.headers as Record<string, string>)['X-CSRF-Token']).toBe('tok+en')
    expect(init.body).toBe('{"name":"A"}')
  })
})
