// A page's state in its address (the viewer's place and overlay), written as it changes
// without navigating, so the address bar can be shared or bookmarked at any moment.

/** `path?query#hash` of `href` with these query parameters set; an empty or missing
 * value removes one. Commas stay readable (`view=10,20,300,200`). */
export function withQuery(href: string, params: Record<string, string | null | undefined>): string {
  const url = new URL(href)
  for (const [key, value] of Object.entries(params)) {
    if (value) url.searchParams.set(key, value)
    else url.searchParams.delete(key)
  }
  const query = url.searchParams.toString().replace(/%2C/gi, ',')
  return `${url.pathname}${query ? `?${query}` : ''}${url.hash}`
}

/** The address bar's query parameters now (they may be newer than the router's route). */
export function currentQuery(): Record<string, string> {
  return Object.fromEntries(new URLSearchParams(window.location.search))
}

/** Writes these query parameters into the address bar: no navigation, no new history
 * entry. The router keeps the address of each entry in its history state (`current`),
 * and writes it back on its next navigation: it gets the new address too. */
export function replaceQuery(params: Record<string, string | null | undefined>): void {
  const next = withQuery(window.location.href, params)
  const state = history.state && typeof history.state === 'object' && 'current' in history.state
    ? { ...history.state, current: next }
    : history.state
  history.replaceState(state, '', next)
}

/** `fn` run once calls stop for `ms`; `cancel()` drops a pending run (a page leaving). */
export function debounce(fn: () => void, ms: number): (() => void) & { cancel: () => void } {
  let timer: ReturnType<typeof setTimeout> | undefined
  const run = () => {
    clearTimeout(timer)
    timer = setTimeout(fn, ms)
  }
  return Object.assign(run, { cancel: () => clearTimeout(timer) })
}
