// Study roles in rank order, and the smallest role each UI action needs (mirrors the
// server's services/workspace/permissions.py RULES; the server still decides).
import type { Role } from '../api'

const RANK: Record<Role, number> = { viewer: 0, annotator: 1, analyst: 2, owner: 3 }

export const NEEDS = {
  // start a thread, reply, pin a comment (every member; not in a locked or archived study)
  'message.post': 'viewer',
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

// A user's level on a registered model (mirrors services/workspace/model_rules.py: NEEDS).
export type ModelLevel = 'read' | 'edit' | 'manage'
const MODEL_RANK: Record<ModelLevel, number> = { read: 0, edit: 1, manage: 2 }
export const MODEL_NEEDS = {
  'model.read': 'read',
  'model.register': 'edit',
  'model.promote': 'manage',
} as const satisfies Record<string, ModelLevel>

/** May a user with `level` on a model (null: no grant) do `action`? Admins may do anything. */
export function modelCan(level: ModelLevel | null, action: keyof typeof MODEL_NEEDS, admin = false): boolean {
  if (admin) return true
  return level !== null && MODEL_RANK[level] >= MODEL_RANK[MODEL_NEEDS[action]]
}
