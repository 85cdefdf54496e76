// One action's error state for a view: `attempt(fn)` runs fn and keeps what it threw in
// `error` (shown by <ProblemAlert>), so a failed request never escapes as an unhandled
// rejection. By default a new attempt first clears the previous error; `{ keep: true }`
// leaves it showing until this attempt fails too (for background reloads).
import { ref, type Ref } from 'vue'

export interface Attempt {
  error: Ref<unknown>
  attempt: (fn: () => Promise<void>, options?: { keep?: boolean }) => Promise<void>
}

export function useAttempt(): Attempt {
  const error = ref<unknown>(null)
  async function attempt(fn: () => Promise<void>, options: { keep?: boolean } = {}): Promise<void> {
    if (!options.keep) error.value = null
    try {
      await fn()
    } catch (err) {
      error.value = err
    }
  }
  return { error, attempt }
}
