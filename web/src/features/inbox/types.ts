// The notification center's data. TODO(schema): these mirror the lead's
// `GET /api/v1/notifications` and `/api/v1/webhooks` shapes until the generated
// schema has them; then they become re-exports from shared/api/types.ts.

// TODO(schema)
export type NotificationKind =
  | 'spec_review'
  | 'implementation_review'
  | 'permission'
  | 'conflict'
  | 'task_failed'
  | 'session_failed'
  | 'blocked'
  | 'request'

// TODO(schema)
export interface Notification {
  key: string
  kind: NotificationKind
  project_id: number
  spec_task_id: number
  spec_task_title: string
  session_id?: number | null
  permission_id?: number | null
  coordination_id?: number | null
  task_key?: string | null
  title: string
  message: string
  link: string
  since: string
}

export const NOTIFICATION_KINDS: NotificationKind[] = [
  'permission',
  'request',
  'conflict',
  'blocked',
  'session_failed',
  'task_failed',
  'spec_review',
  'implementation_review',
]

export const KIND_LABEL: Record<NotificationKind, string> = {
  permission: 'Permission request',
  request: 'Request for a person',
  conflict: 'Merge conflict',
  blocked: 'Session blocked',
  session_failed: 'Session failed',
  task_failed: 'Task failed',
  spec_review: 'Spec ready for review',
  implementation_review: 'Implementation ready for review',
}

/** How the center groups what waits: what blocks an agent first, reviews last. */
export const GROUPS: { id: string; title: string; kinds: NotificationKind[] }[] = [
  { id: 'answer', title: 'Waiting for an answer', kinds: ['permission', 'request'] },
  { id: 'stuck', title: 'Stuck', kinds: ['conflict', 'blocked', 'session_failed', 'task_failed'] },
  { id: 'review', title: 'Ready for review', kinds: ['spec_review', 'implementation_review'] },
]
