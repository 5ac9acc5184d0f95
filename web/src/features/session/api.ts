// What the session page reads: the session, its task's coordination events, the
// pending permission requests (shared/api/queries), its changes. useSessionLive
// (below) refreshes this page's own ones from the events on the one WebSocket.
import { useEffect } from 'react'
import { queryOptions, useQueryClient } from '@tanstack/react-query'
import { api, unwrap } from '../../shared/api/client'
import { useLive } from '../../shared/ui/live-context'

export const sessionKeys = {
  session: (id: number) => ['work-session', id] as const,
  coordination: (task: number) => ['coordination', task] as const,
  changes: (id: number) => ['session-changes', id] as const,
}

export const sessionQuery = (id: number) =>
  queryOptions({
    queryKey: sessionKeys.session(id),
    queryFn: () => unwrap(api.GET('/api/v1/sessions/{id}', { params: { path: { id } } })),
  })

export const coordinationQuery = (task: number) =>
  queryOptions({
    queryKey: sessionKeys.coordination(task),
    queryFn: () =>
      unwrap(api.GET('/api/v1/spec-tasks/{id}/coordination', { params: { path: { id: task } } })),
  })

export const changesQuery = (id: number) =>
  queryOptions({
    queryKey: sessionKeys.changes(id),
    queryFn: () => unwrap(api.GET('/api/v1/sessions/{id}/changes', { params: { path: { id } } })),
  })

/** Refreshes this page's own queries on the events that touch them. */
export function useSessionLive(sessionId: number, taskId: number | undefined) {
  const live = useLive()
  const qc = useQueryClient()
  useEffect(
    () =>
      live.onEvent((e) => {
        if (e.entity === 'work_session') {
          if (e.entity_id === sessionId) {
            void qc.invalidateQueries({ queryKey: sessionKeys.session(sessionId) })
            void qc.invalidateQueries({ queryKey: sessionKeys.changes(sessionId) })
          }
        } else if (e.entity === 'coordination_event' && taskId != null && e.spec_task_id === taskId) {
          void qc.invalidateQueries({ queryKey: sessionKeys.coordination(taskId) })
        }
      }),
    [live, qc, sessionId, taskId],
  )
}
