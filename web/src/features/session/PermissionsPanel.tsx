// The permission requests waiting for this session, answered in place with the
// options the agent offered. Answered elsewhere (the CLI, another tab), they leave
// at once: every permission event refreshes the list (shared/api/live.ts).
import { memo } from 'react'
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { api, errorMessage, unwrap } from '../../shared/api/client'
import { keys, pendingPermissionsQuery } from '../../shared/api/queries'
import type { PermissionRequest } from '../../shared/api/types'
import { toast } from '../../shared/ui/toast'
import { ago, dateTime } from '../../shared/lib/format'

interface Option {
  optionId: string
  name?: string
  kind?: string
}

export const PermissionsPanel = memo(function PermissionsPanel({ sessionId }: { sessionId: number }) {
  const pending = useQuery(pendingPermissionsQuery)
  const mine = (pending.data ?? []).filter((p) => p.work_session_id === sessionId && p.status === 'pending')
  if (mine.length === 0) return null
  return (
    <section className="panel perm-panel" aria-labelledby="perm-h" data-testid="permissions">
      <h2 id="perm-h">
        <span className="pulse" aria-hidden="true" /> The agent asks for permission
      </h2>
      <ul className="perm-list">
        {mine.map((p) => (
          <PermissionItem key={p.id} request={p} />
        ))}
      </ul>
    </section>
  )
})

function PermissionItem({ request: p }: { request: PermissionRequest }) {
  const qc = useQueryClient()
  const answer = useMutation({
    mutationFn: (option: string | null) =>
      unwrap(
        api.POST('/api/v1/permissions/{id}/answer', {
          params: { path: { id: p.id } },
          body: { option_id: option },
        }),
      ),
    onSuccess: (done) => {
      qc.setQueryData<PermissionRequest[]>(keys.permissions, (list) => list?.filter((x) => x.id !== done.id))
      void qc.invalidateQueries({ queryKey: keys.permissions })
      toast('ok', `Answered: ${done.option_id ?? 'cancelled'}`)
    },
    onError: (err) => toast('error', `Answer refused: ${errorMessage(err)}`),
  })
  const options = (p.options as unknown as Option[]).filter((o) => typeof o?.optionId === 'string')
  const call = p.tool_call as unknown as { kind?: string; locations?: { path: string }[] }
  return (
    <li className="perm-item" data-permission-id={p.id}>
      <div className="perm-what">
        <strong>{p.title}</strong>
        <span className="muted small" title={dateTime(p.created_at)}>
          {' '}
          · {call?.kind ?? 'tool'} · asked {ago(p.created_at)}
        </span>
        {Array.isArray(call?.locations) && call.locations.length > 0 && (
          <div className="small">
            {call.locations.map((l, i) => (
              <code key={i}>{l.path} </code>
            ))}
          </div>
        )}
      </div>
      <div className="perm-options" role="group" aria-label={`Answer: ${p.title}`}>
        {options.map((o) => (
          <button
            key={o.optionId}
            type="button"
            className={`btn btn-sm ${/^allow/.test(o.kind ?? '') ? 'btn-primary' : /^reject/.test(o.kind ?? '') ? 'btn-danger' : ''}`}
            disabled={answer.isPending}
            onClick={() => answer.mutate(o.optionId)}
            title={o.kind ? `${o.kind.replace(/_/g, ' ')}` : undefined}
          >
            {o.name ?? o.optionId}
          </button>
        ))}
        <button type="button" className="btn btn-sm btn-ghost" disabled={answer.isPending} onClick={() => answer.mutate(null)}>
          Cancel request
        </button>
      </div>
    </li>
  )
}
