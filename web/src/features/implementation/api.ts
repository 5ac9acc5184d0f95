// The implementation tab's reads and writes. Every key starts with the task's
// overview key, so the one invalidation live.ts makes per event of the task
// (keys.overview(id)) refreshes these too: no polling, no extra wiring.
import { queryOptions, useMutation, useQueryClient } from '@tanstack/react-query'
import { api, errorMessage, unwrap } from '../../shared/api/client'
import { keys } from '../../shared/api/queries'
import { toast } from '../../shared/ui/toast'
import type { Decision, PostCoordination, SpawnRequest } from './types'

export const implKeys = {
  coordination: (id: number) => [...keys.overview(id), 'coordination'] as const,
  threads: (id: number) => [...keys.overview(id), 'threads'] as const,
  samples: (id: number) => [...keys.overview(id), 'samples'] as const,
}

export const coordinationQuery = (id: number) =>
  queryOptions({
    queryKey: implKeys.coordination(id),
    queryFn: () => unwrap(api.GET('/api/v1/spec-tasks/{id}/coordination', { params: { path: { id } } })),
  })

export const threadsQuery = (id: number) =>
  queryOptions({
    queryKey: implKeys.threads(id),
    queryFn: () => unwrap(api.GET('/api/v1/spec-tasks/{id}/threads', { params: { path: { id } } })),
  })

export const samplesQuery = (id: number) =>
  queryOptions({
    queryKey: implKeys.samples(id),
    queryFn: () => unwrap(api.GET('/api/v1/spec-tasks/{id}/agent/samples', { params: { path: { id } } })),
  })

/** After a write: the task's overview (and everything under its key) again. */
function useRefresh(id: number) {
  const qc = useQueryClient()
  return () => void qc.invalidateQueries({ queryKey: keys.overview(id) })
}

const DECISION_LABEL: Record<Decision, string> = { retry: 'Retry', skip: 'Skip', cancel: 'Cancel' }

export function useSessionDecision(taskId: number) {
  const refresh = useRefresh(taskId)
  return useMutation({
    mutationFn: ({ session, decision }: { session: number; decision: Decision }) =>
      unwrap(api.POST('/api/v1/sessions/{id}/{decision}', { params: { path: { id: session, decision } } })),
    onSuccess: (s, { decision }) => {
      refresh()
      toast('ok', `${DECISION_LABEL[decision]}: session ${s.id} is now ${s.status}`)
    },
    onError: (err, { decision, session }) => toast('error', `${DECISION_LABEL[decision]} session ${session} refused: ${errorMessage(err)}`),
  })
}

export function usePlanTaskDecision(taskId: number) {
  const refresh = useRefresh(taskId)
  return useMutation({
    mutationFn: ({ key, decision }: { key: string; decision: Decision }) =>
      unwrap(
        api.POST('/api/v1/spec-tasks/{id}/implementation-tasks/{key}/{decision}', {
          params: { path: { id: taskId, key, decision } },
        }),
      ),
    onSuccess: (t, { decision }) => {
      refresh()
      toast('ok', `${DECISION_LABEL[decision]}: task ${t.key} is now ${t.status.replace(/_/g, ' ')}`)
    },
    onError: (err, { decision, key }) => toast('error', `${DECISION_LABEL[decision]} task ${key} refused: ${errorMessage(err)}`),
  })
}

export function usePostCoordination(taskId: number) {
  const refresh = useRefresh(taskId)
  return useMutation({
    mutationFn: (body: PostCoordination) =>
      unwrap(api.POST('/api/v1/spec-tasks/{id}/coordination', { params: { path: { id: taskId } }, body })),
    onSuccess: refresh,
  })
}

export function useAcknowledge(taskId: number) {
  const refresh = useRefresh(taskId)
  return useMutation({
    mutationFn: (eventId: number) =>
      unwrap(
        api.POST('/api/v1/spec-tasks/{id}/coordination/{event_id}/ack', {
          params: { path: { id: taskId, event_id: eventId } },
        }),
      ),
    onSuccess: refresh,
    onError: (err) => toast('error', `Acknowledge refused: ${errorMessage(err)}`),
  })
}

export function useSpawn(taskId: number) {
  const refresh = useRefresh(taskId)
  return useMutation({
    mutationFn: (body: SpawnRequest) =>
      unwrap(api.POST('/api/v1/spec-tasks/{id}/sessions', { params: { path: { id: taskId } }, body })),
    onSuccess: (s) => {
      refresh()
      toast('ok', `Spawned session ${s.id}: ${s.name}`)
    },
  })
}

export function useAgentControl(taskId: number) {
  const refresh = useRefresh(taskId)
  return useMutation({
    mutationFn: async (what: 'stop' | 'restart') => {
      if (what === 'stop') {
        return unwrap(api.POST('/api/v1/spec-tasks/{id}/agent/stop', { params: { path: { id: taskId } } }))
      }
      return unwrap(api.POST('/api/v1/spec-tasks/{id}/agent/restart', { params: { path: { id: taskId } } }))
    },
    onSuccess: (instance, what) => {
      refresh()
      toast('ok', what === 'stop' ? `Agent stopped${instance ? '' : ' (none was running)'}` : 'Agent restarted')
    },
    onError: (err, what) => toast('error', `${what === 'stop' ? 'Stop' : 'Restart'} refused: ${errorMessage(err)}`),
  })
}

/** The emergency stop of every agent of every task. */
export function useStopAll() {
  const qc = useQueryClient()
  return useMutation({
    mutationFn: () => unwrap(api.POST('/api/v1/agents/stop-all')),
    onSuccess: (r) => {
      void qc.invalidateQueries({ queryKey: ['overview'] })
      toast('ok', `Stopped ${r.stopped} agent${r.stopped === 1 ? '' : 's'}`)
    },
    onError: (err) => toast('error', `Stop all refused: ${errorMessage(err)}`),
  })
}
