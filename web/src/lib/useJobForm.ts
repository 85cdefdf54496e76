// A dialog whose form comes from a JSON Schema and whose submit starts one job: the form
// and its values (`load(schema)`, `set`, client-side `errors`, `params()` for the body),
// the job it started (`running`, `cancel`) and the request's error with the server's
// per-field errors (`serverErrors`, from a 422 problem+json `errors` list).
import { computed, ref } from 'vue'
import { ApiError, post, TERMINAL, type Job } from '../api'
import { formOf, initialValues, paramsFrom, validate, type Form, type JsonSchema } from './schemaForm'
import { useAttempt } from './useAttempt'

export interface FieldProblem { loc: string; msg: string }

/** `settled` runs on the job a cancel returned (e.g. to load what the job produced). */
export function useJobForm(settled: (job: Job) => Promise<void> | void = () => {}) {
  const { error, pending, attempt } = useAttempt()
  const form = ref<Form>({ fields: [], skipped: [] })
  const values = ref<Record<string, unknown>>({})
  const errors = computed(() => validate(form.value.fields, values.value))
  const job = ref<Job | null>(null)
  const running = computed(() => job.value !== null && !TERMINAL.has(job.value.state))
  const serverErrors = computed<FieldProblem[]>(() => {
    const e = error.value
    return e instanceof ApiError && Array.isArray(e.problem.errors) ? (e.problem.errors as FieldProblem[]) : []
  })

  function load(schema: JsonSchema) {
    form.value = formOf(schema)
    values.value = initialValues(form.value.fields)
  }

  function set(key: string, value: unknown) {
    values.value = { ...values.value, [key]: value }
  }

  const params = () => paramsFrom(form.value.fields, values.value)

  const cancel = () => attempt(async () => {
    if (!job.value) return
    job.value = await post<Job>(`/v1/jobs/${job.value.id}/cancel`, {})
    await settled(job.value)
  })

  return { error, pending, attempt, form, values, errors, job, running, serverErrors, load, set, params, cancel }
}
