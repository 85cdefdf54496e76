// What an audit event acted on, for a person: its kind, its name when the event recorded
// one (a study's, an image's file, a user's), the page that shows it, and the study it
// happened in.

export interface AuditedEvent {
  target_type: string
  target_id: string | null
  study_id: string | null
  before?: unknown
  after?: unknown
}

export interface AuditTarget {
  kind: string
  /** the target's name, else the start of its id, else '' (the log, the site) */
  label: string
  /** the whole id (a tooltip), or null */
  id: string | null
  /** the page showing the target, or null */
  href: string | null
  /** the study the event happened in, when the target is something else */
  study: { id: string; href: string } | null
}

const NAMES = ['name', 'display_name', 'username', 'filename', 'title', 'code'] as const

function recordedName(...states: unknown[]): string | null {
  for (const state of states) {
    if (!state || typeof state !== 'object') continue
    for (const key of NAMES) {
      const value = (state as Record<string, unknown>)[key]
      if (typeof value === 'string' && value) return value
    }
  }
  return null
}

// the study tab that lists a kind of thing
const TAB: Record<string, string> = {
  analysis: 'analyses', thread: 'messages', message: 'messages', patient: 'patients', member: 'members',
}

function pageOf(kind: string, id: string | null, study: string | null): string | null {
  if (kind === 'study' && id) return `/studies/${id}`
  if (kind === 'image' && id) return `/viewer/${id}${study ? `?study=${study}` : ''}`
  if (kind === 'job') return '/jobs'
  if (kind === 'model') return '/models'
  if (study) return `/studies/${study}${TAB[kind] ? `?tab=${TAB[kind]}` : ''}`
  return null
}

export function auditTarget(e: AuditedEvent): AuditTarget {
  const kind = e.target_type
  // a route ("POST /v1/images": a refusal at the door) is its own name, whole
  const label = kind === 'route' && e.target_id
    ? e.target_id
    : recordedName(e.after, e.before) ?? (e.target_id ? e.target_id.slice(0, 12) : '')
  const inStudy = e.study_id && !(kind === 'study' && e.target_id === e.study_id) ? e.study_id : null
  return {
    kind,
    label,
    id: e.target_id,
    href: pageOf(kind, e.target_id, e.study_id),
    study: inStudy ? { id: inStudy, href: `/studies/${inStudy}` } : null,
  }
}
