import { useMutation, useQueryClient } from '@tanstack/react-query'
import { api, errorMessage, unwrap } from './client'
import { keys, upsertTask } from './queries'
import type { Action, SpecTaskStatus } from './types'
import { toast } from '../ui/toast'

/** What a person can do to a task in each status (the server still decides). */
export function actionsFor(status: SpecTaskStatus): Action[] {
  switch (status) {
    case 'backlog':
      return ['start-planning', 'cancel']
    case 'planning_queued':
    case 'planning':
    case 'implementation_queued':
    case 'implementing':
      return ['cancel']
    case 'spec_review':
      return ['approve', 'request-changes', 'reject', 'cancel']
    case 'implementation_review':
      return ['approve', 'request-changes', 'cancel']
    case 'failed':
      return ['retry', 'cancel']
    default:
      return []
  }
}

export const ACTION_LABEL: Record<Action, string> = {
  'start-planning': 'Start planning',
  approve: 'Approve',
  'request-changes': 'Request changes',
  reject: 'Reject',
  cancel: 'Cancel',
  retry: 'Retry',
}

export function useTaskAction(id: number) {
  const any = useAnyTaskAction()
  return {
    isPending: any.isPending,
    mutate: (action: Action, opts?: { onSuccess?: () => void; onError?: (err: unknown) => void }) =>
      any.mutate({ id, action }, { onSuccess: opts?.onSuccess, onError: opts?.onError }),
  }
}

/** A lifecycle action on any task; the result goes into the caches at once. */
export function useAnyTaskAction() {
  const qc = useQueryClient()
  return useMutation({
    mutationFn: ({ id, action }: { id: number; action: Action }) =>
      unwrap(api.POST('/api/v1/spec-tasks/{id}/{action}', { params: { path: { id, action } } })),
    onSuccess: (task, { id, action }) => {
      upsertTask(qc, task)
      void qc.invalidateQueries({ queryKey: keys.overview(id) })
      void qc.invalidateQueries({ queryKey: keys.versions(id) })
      void qc.invalidateQueries({ queryKey: ['version', id] })
      toast('ok', `${ACTION_LABEL[action]}: task #${id} is now ${task.status.replace(/_/g, ' ')}`)
    },
    onError: (err, { action }) => {
      toast('error', `${ACTION_LABEL[action]} refused: ${errorMessage(err)}`)
    },
  })
}
