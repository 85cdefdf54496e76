// One action's error state for a view: `attempt(fn)` runs fn and keeps what it threw in
// `error` (shown by <ProblemAlert>), so a failed request never escapes as an unhandled
// rejection. By default a new attempt first clears the previous error; `{ keep: true }`
// leaves it showing until this attempt fails too (for background reloads).
// `{ once: true }` marks a user's submit (create, run, post): while one is pending,
// `pending` is true (its button is `:disabled`) and another `once` attempt is refused, so
// a double click sends one request. Other attempts (loads, nested reloads) always run.
import { ref, type Ref } from 'vue'

export interface AttemptOptions {
  keep?: boolean
  once?: boolean
}

export interface Attempt {
  error: Ref<unknown>
  pending: Ref<boolean>
  attempt: (fn: () => Promise<void>, options?: AttemptOptions) => Promise<void>
}

export function useAttempt(): Attempt {
  const error = ref<unknown>(null)
  const pending = ref(false)
  async function attempt(fn: () => Promise<void>, options: AttemptOptions = {}): Promise<void> {
    if (options.once) {
      if (pending.value) return
      pending.value = true
    }
    if (!options.keep) error.value = null
    try {
      await fn()
    } catch (err) {
      error.value = err
    } finally {
      if (options.once) pending.value = false
    }
  }
  return { error, pending, attempt }
}
