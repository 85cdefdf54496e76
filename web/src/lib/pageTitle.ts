// The browser tab names the page: the route's title ("Studies · pixelmill"), and once a
// page knows what it shows, that too ("Colon cohort · Study · pixelmill"), so tabs,
// bookmarks and the history list tell studies and images apart.
import { watchEffect } from 'vue'

export const APP_NAME = 'pixelmill'

/** The title of a page: its parts (empty ones left out), then the app's name. */
export function pageTitle(...parts: (string | null | undefined)[]): string {
  return [...parts.filter((p): p is string => !!p), APP_NAME].join(' · ')
}

/** Names the open page after what it shows once `name()` is known (then whenever it
 * changes): `name · kind · pixelmill`. */
export function usePageTitle(name: () => string | null | undefined, kind: string): void {
  watchEffect(() => {
    const shown = name()
    if (shown) document.title = pageTitle(shown, kind)
  })
}
