// Study roles in rank order, and the smallest role each UI action needs (mirrors the
// server's services/workspace/permissions.py RULES; the server still decides).
import type { Role } from '../api'

const RANK: Record<Role, number> = { viewer: 0, annotator: 1, analyst: 2, owner: 3 }

export const NEEDS = {
  'annotation.create': 'annotator',
  'analysis.promote': 'annotator',
  'image.add': 'analyst',
  'analysis.run': 'analyst',
  'patient.write': 'analyst',
  'image.update': 'analyst',
  'study.export': 'analyst',
  'dataset.build': 'analyst',
  'model.train': 'analyst',
  'member.manage': 'owner',
  'study.update': 'owner',
  'study.set_status': 'owner',
} as const satisfies Record<string, Role>

export type UiAction = keyof typeof NEEDS

/** May `role` (null: not a member; admins act as owners) do `action` in a study with `status`? */
export function can(role: Role | null, action: UiAction, status = 'active', admin = false): boolean {
  const effective: Role | null = admin ? 'owner' : role
  if (effective === null) return false
  // training from annotations reads the study without changing it (a locked study's
  // annotations are final)
  const frozenOk = ['member.manage', 'study.set_status', 'dataset.build', 'model.train'].includes(action)
  if (status !== 'active' && !frozenOk) return false
  return RANK[effective] >= RANK[NEEDS[action]]
}
