// A session ended elsewhere (logout in another tab): the next 401 sends the user to the
// login page, once, with the page they were on as `next`.
import { createPinia, setActivePinia } from 'pinia'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { ApiError, get, post, uploadImage } from '../src/api'
import { router } from '../src/router'
import { useSession } from '../src/stores/session'
import { fakeFetch, json } from './helpers'

describe('an ended session', () => {
  beforeEach(async () => {
    setActivePinia(createPinia())
    const session = useSession()
    session.loaded = true
    session.me = { scope: 'write', via: 'session', key_id: null }
    await router.push('/keys?x=1')
  })
  afterEach(() => vi.unstubAllGlobals())

  it('sends the user to /login?next=<the page>, once, on 401s', async () => {
    vi.stubGlobal('fetch', fakeFetch(() => json(401, { detail: 'this request needs an API key or a login' })).fetch)
    const push = vi.spyOn(router, 'push')
    const errors = await Promise.all([get('/v1/studies'), post('/v1/studies', { name: 'x' })].map((p) => p.catch((e) => e)))
    expect(errors.every((e) => e instanceof ApiError && e.status === 401)).toBe(true)
    await vi.waitFor(() => expect(router.currentRoute.value.name).toBe('login'))
    expect(router.currentRoute.value.query.next).toBe('/keys?x=1')
    expect(push).toHaveBeenCalledTimes(1)
    expect(useSession().me).toBeNull()
    push.mockRestore()
  })

  it('leaves a wrong password (401 from /v1/auth/) on the login form', async () => {
    vi.stubGlobal('fetch', fakeFetch(() => json(401, { detail: 'wrong username or password' })).fetch)
    await post('/v1/auth/login', { username: 'a', password: 'b' }).catch(() => {})
    await new Promise((r) => setTimeout(r, 10))
    expect(router.currentRoute.value.path).toBe('/keys')
  })

  it('an upload answered 401 goes to the login page too', async () => {
    class Xhr {
      status = 401
      responseText = '{"detail":"login needed"}'
      upload = { onprogress: null }
      onload: (() => void) | null = null
      onerror: (() => void) | null = null
      open() {}
      setRequestHeader() {}
      send() { setTimeout(() => this.onload?.(), 0) }
    }
    vi.stubGlobal('XMLHttpRequest', Xhr)
    const err = await uploadImage(new File(['x'], 'a.png'), () => {}).catch((e) => e)
    expect((err as ApiError).status).toBe(401)
    await vi.waitFor(() => expect(router.currentRoute.value.name).toBe('login'))
    expect(router.currentRoute.value.query.next).toBe('/keys?x=1')
  })
})
