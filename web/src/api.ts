// The one way the UI talks to the API: same origin, the session cookie, the CSRF token
// echoed on unsafe requests, and RFC 9457 problems turned into ApiError (shown by `detail`).

import type { PixelRegion } from './lib/placement'

export interface Problem {
  type?: string
  title?: string
  status?: number
  detail?: string
  [key: string]: unknown
}

export class ApiError extends Error {
  readonly status: number
  readonly problem: Problem

  constructor(status: number, problem: Problem) {
    super(problemMessage(status, problem))
    this.status = status
    this.problem = problem
  }
}

/** The sentence a person reads for a failed request: the problem's `detail`, never a dump. */
export function problemMessage(status: number, problem: Problem | null | undefined): string {
  if (problem?.detail && typeof problem.detail === 'string') return problem.detail
  if (problem?.title && typeof problem.title === 'string') return problem.title
  if (status === 0) return 'The server cannot be reached. Check your connection and retry.'
  return `The request failed (HTTP ${status}).`
}

/** Why a task, an image's analysis or a job failed (its stored problem), or '' when none. */
export function failureText(problem: Problem | null | undefined): string {
  return problem ? problemMessage(problem.status ?? 500, problem) : ''
}

/** The message of any error thrown by a request, for an alert. */
export function errorMessage(err: unknown): string {
  if (err instanceof ApiError) return err.message
  if (err instanceof Error) return err.message
  return String(err)
}

export const CSRF_COOKIE = 'pm_csrf'

export function csrfToken(cookies: string = document.cookie): string | null {
  for (const part of cookies.split(';')) {
    const [name, ...rest] = part.trim().split('=')
    if (name === CSRF_COOKIE) return decodeURIComponent(rest.join('='))
  }
  return null
}

const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])

export function headersFor(method: string, extra: Record<string, string> = {}): Record<string, string> {
  const headers: Record<string, string> = { Accept: 'application/json', ...extra }
  const token = csrfToken()
  if (UNSAFE.has(method) && token) headers['X-CSRF-Token'] = token
  return headers
}

async function parseProblem(res: Response): Promise<Problem> {
  try {
    const body = await res.json()
    return typeof body === 'object' && body !== null ? (body as Problem) : {}
  } catch {
    return {}
  }
}

// A 401 from anything but /v1/auth/ (where it means "not logged in" or a wrong password)
// says the session ended (a logout in another tab, an expiry): the router installs what
// happens then (to the login page, once). Kept as a hook so this module needs no router.
let sessionEnded: () => void = () => {}

export function onSessionEnded(handler: () => void): void {
  sessionEnded = handler
}

function checkSession(path: string, status: number): void {
  if (status === 401 && !path.startsWith('/v1/auth/')) sessionEnded()
}

export interface RequestOptions {
  method?: string
  json?: unknown
  body?: BodyInit
  headers?: Record<string, string>
}

export async function request<T>(path: string, options: RequestOptions = {}): Promise<T> {
  const method = options.method ?? (options.json !== undefined ? 'POST' : 'GET')
  const headers = headersFor(method, options.headers)
  let body = options.body
  if (options.json !== undefined) {
    headers['Content-Type'] = 'application/json'
    body = JSON.stringify(options.json)
  }
  let res: Response
  try {
    res = await fetch(path, { method, headers, body, credentials: 'same-origin' })
  } catch {
    throw new ApiError(0, {})
  }
  if (!res.ok) {
    checkSession(path, res.status)
    throw new ApiError(res.status, await parseProblem(res))
  }
  if (res.status === 204) return undefined as T
  const type = res.headers.get('content-type') ?? ''
  return (type.includes('json') ? await res.json() : await res.text()) as T
}

export const get = <T>(path: string) => request<T>(path)
export const post = <T>(path: string, json?: unknown) => request<T>(path, { method: 'POST', json: json ?? {} })
export const patch = <T>(path: string, json: unknown) => request<T>(path, { method: 'PATCH', json })
export const put = <T>(path: string, json: unknown) => request<T>(path, { method: 'PUT', json })
export const del = (path: string) => request<void>(path, { method: 'DELETE' })

/** Uploads one file (multipart field `file`) to POST /v1/images, reporting progress (0..1). */
export function uploadImage(file: File, onProgress: (fraction: number) => void): Promise<ImageInfo> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest()
    xhr.open('POST', '/v1/images')
    for (const [k, v] of Object.entries(headersFor('POST'))) xhr.setRequestHeader(k, v)
    xhr.upload.onprogress = (e) => e.lengthComputable && onProgress(e.loaded / e.total)
    xhr.onerror = () => reject(new ApiError(0, {}))
    xhr.onload = () => {
      let body: unknown = {}
      try {
        body = JSON.parse(xhr.responseText)
      } catch {
        body = {}
      }
      if (xhr.status >= 200 && xhr.status < 300) resolve(body as ImageInfo)
      else {
        checkSession('/v1/images', xhr.status)
        reject(new ApiError(xhr.status, body as Problem))
      }
    }
    const form = new FormData()
    form.append('file', file, file.name)
    xhr.send(form)
  })
}

// -- shapes of the API's answers (the parts the UI reads) --------------------------------

export interface User {
  id: string
  username: string
  display_name: string
  site_role: 'admin' | 'member'
  disabled: boolean
  locked: boolean
  created_at: string
  last_login_at: string | null
}

export interface Me {
  scope: string
  via: string
  key_id: string | null
  user?: User
}

export interface StudyCounts {
  patients: number
  images: number
  analyses: number
  open_threads: number
  unread_messages: number
}

export type Role = 'viewer' | 'annotator' | 'analyst' | 'owner'

export interface Study {
  id: string
  name: string
  description: string
  modality: string
  status: 'active' | 'locked' | 'archived'
  created_at: string
  last_activity_at: string
  my_role: Role | null
  counts?: StudyCounts
}

export interface Page<T> {
  items: T[]
  total: number
  limit: number
  offset: number
}

export interface StudyImage {
  image_id: string
  display_name: string
  stain: string | null
  magnification: number | null
  pixel_size_um: number | null
  patient_id: string | null
  analysis_status: string
  added_at: string
  width: number | null
  height: number | null
  format: string | null
  links: { image: string; thumbnail: string }
}

export interface ImageInfo {
  id: string
  filename?: string | null
  width: number
  height: number
  format: string
  size_bytes?: number
  job_id?: string | null
  pixel_size_um?: number | null
  /** channels (bands) of the pixels, an alpha band included */
  bands?: number
  interpretation?: string
  created_at: string
}

export interface Member {
  user_id: string
  username: string
  display_name: string
  role: Role
  added_at: string
}

export interface StudyEvent {
  id: number
  at: string
  action: string
  target_type: string
  target_id: string | null
  actor: { username?: string; display_name?: string } | null
}

export interface JobTask {
  index: number
  input: string | null
  state: string
  progress: number
  result_image: string | null
  error: Problem | null
  /** the tables and JSON the task stored (`url`: this task's copy) */
  artifacts?: { name: string; url: string }[]
}

export interface Job {
  id: string
  kind: string
  state: 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled'
  inputs: string[]
  params: Record<string, unknown>
  progress: { total: number; succeeded: number; failed: number; fraction: number }
  error: Problem | null
  created_at: string
  finished_at: string | null
  tasks?: JobTask[]
  /** what the job returned, once it succeeded (its kind's shape) */
  result?: unknown
}

export interface ApiKey {
  id: string
  name: string
  role: string
  user_id: string | null
  created_at: string
  revoked_at: string | null
}

export interface AnalysisImage {
  state: string
  progress?: number
  object_count?: number | null
  result_image?: string | null
  error?: Problem | null
  links?: { study: Record<string, string>; job: Record<string, string> }
}

export interface Analysis {
  id: string
  study_id: string
  kind: 'preset' | 'model'
  target: string
  status: 'running' | 'done' | 'failed' | 'cancelled'
  image_ids: string[]
  object_count: number | null
  images: Record<string, AnalysisImage>
  /** the rectangle of each image analysed (a whole slide's), or null: whole images */
  region?: PixelRegion | null
  job_id: string
  created_by: string
  created_at: string
}

export interface Patient {
  id: string
  code: string
  has_external_id: boolean
  sex: string | null
  age_band: string | null
  diagnosis: string | null
  arm: string | null
  tags: string[]
  image_count: number
}

export const TERMINAL = new Set(['succeeded', 'failed', 'cancelled'])

/** A training loop's decision (the result of a `training_loop` job). */
export interface LoopResult {
  model: string
  alias: string
  metric: string
  candidate: { version: number; score: number | null; evaluation: string | null }
  holder: { version: number; score: number | null; evaluation: string | null } | null
  decision: 'promoted' | 'kept'
  verdict: string
  rollback: string
}
