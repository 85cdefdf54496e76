// Shared fakes for component tests: a fetch answering by method + path, and EventSource.
import { afterEach, beforeEach, vi } from 'vitest'

export const json = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': status < 400 ? 'application/json' : 'application/problem+json' } })

export type Route = (url: string, init: RequestInit) => Response | Promise<Response> | undefined

/** A fetch stub: the first route answering wins; else 404. `calls` lists "METHOD url". */
export function fakeFetch(...routes: Route[]) {
  const calls: string[] = []
  const fetch = vi.fn(async (url: string, init: RequestInit = {}) => {
    calls.push(`${init.method ?? 'GET'} ${url}`)
    for (const r of routes) {
      const res = await r(url, init)
      if (res) return res
    }
    return json(404, { status: 404, title: 'Not Found' })
  })
  return { fetch, calls }
}

/** Resolves after pending promises and timers of `ms` have run. */
export const settle = (ms = 0) => new Promise((r) => setTimeout(r, ms))

/** EventSource as the server's job stream: every new stream sends a `snapshot` first. */
export class FakeEventSource {
  static opened: FakeEventSource[] = []
  url: string
  closed = false
  onerror: (() => void) | null = null
  listeners: Record<string, (() => void)[]> = {}
  constructor(url: string) {
    this.url = url
    FakeEventSource.opened.push(this)
    setTimeout(() => this.emit('snapshot'), 0)
  }
  addEventListener(type: string, fn: () => void) {
    ;(this.listeners[type] ??= []).push(fn)
  }
  emit(type: string) {
    if (!this.closed) for (const fn of this.listeners[type] ?? []) fn()
  }
  close() {
    this.closed = true
  }
}

/** For every test of the calling `describe`: FakeEventSource is the global EventSource,
 * with no stream opened yet; every stubbed global is removed after the test. */
export function stubEventSource() {
  beforeEach(() => {
    FakeEventSource.opened = []
    vi.stubGlobal('EventSource', FakeEventSource)
  })
  afterEach(() => vi.unstubAllGlobals())
}
