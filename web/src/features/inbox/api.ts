// Queries and actions of the notification center. The list is computed by the
// server; live.ts invalidates ['notifications'] on every event that may change it.
import { queryOptions, useMutation, useQueryClient } from '@tanstack/react-query'
import { api, errorMessage, unwrap } from '../../shared/api/client'
import { keys } from '../../shared/api/queries'
import { toast } from '../../shared/ui/toast'

export const notificationsKey = ['notifications'] as const

export const notificationsQuery = queryOptions({
  queryKey: notificationsKey,
  queryFn: () => unwrap(api.GET('/api/v1/notifications')),
})

/** Retry or skip a conflicted or failed session. */
export function useSessionDecision() {
  const qc = useQueryClient()
  return useMutation({
    mutationFn: ({ id, decision }: { id: number; decision: 'retry' | 'skip' }) =>
      unwrap(api.POST('/api/v1/sessions/{id}/{decision}', { params: { path: { id, decision } } })),
    onSuccess: (session, { decision }) => {
      void qc.invalidateQueries({ queryKey: notificationsKey })
      void qc.invalidateQueries({ queryKey: keys.overview(session.spec_task_id) })
      toast('ok', `${decision === 'retry' ? 'Retrying' : 'Skipped'} session #${session.id}`)
    },
    onError: (err, { decision }) => toast('error', `${decision === 'retry' ? 'Retry' : 'Skip'} refused: ${errorMessage(err)}`),
  })
}

/** Answer a pending permission request with one of its options. */
export function useAnswerPermission() {
  const qc = useQueryClient()
  return useMutation({
    mutationFn: ({ id, option }: { id: number; option: string }) =>
      unwrap(api.POST('/api/v1/permissions/{id}/answer', { params: { path: { id } }, body: { option_id: option } })),
    onSuccess: (p) => {
      void qc.invalidateQueries({ queryKey: notificationsKey })
      void qc.invalidateQueries({ queryKey: keys.permissions })
      toast('ok', `Answered “${p.title}”: ${p.option_id ?? 'cancelled'}`)
    },
    onError: (err) => toast('error', `Answer refused: ${errorMessage(err)}`),
  })
}
