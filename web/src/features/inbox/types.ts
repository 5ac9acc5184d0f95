// The notification center's kinds, their names and how the center groups them.
import type { Notification, NotificationKind } from '../../shared/api/types'

export type { Notification, NotificationKind }

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
