// What a person does to a session: send it a message (delivered into its next
// turn), hand its work off to another session, block or unblock it, cancel it
// (confirmed) or retry it. The server decides; a refusal shows its reason.
import { memo, useState, type FormEvent } from 'react'
import { useMutation, useQueryClient } from '@tanstack/react-query'
import { api, errorMessage, unwrap } from '../../shared/api/client'
import type { Schemas } from '../../shared/api/client'
import type { WorkSession } from '../../shared/api/types'
import { Dialog } from '../../shared/ui/Dialog'
import { toast } from '../../shared/ui/toast'
import { sessionKeys } from './api'

type Post = Schemas['PostCoordination']
type Open = null | 'message' | 'handoff' | 'block' | 'cancel'

const ENDED = new Set(['completed', 'failed', 'skipped', 'cancelled'])
const RETRYABLE = new Set(['failed', 'interrupted', 'cancelled', 'conflicted'])

export const SessionActions = memo(function SessionActions(props: { session: WorkSession; blocked: boolean; others: WorkSession[] }) {
  const { session: s, blocked } = props
  const qc = useQueryClient()
  const [open, setOpen] = useState<Open>(null)
  const close = () => setOpen(null)

  const post = useMutation({
    mutationFn: (body: Post) =>
      unwrap(api.POST('/api/v1/spec-tasks/{id}/coordination', { params: { path: { id: s.spec_task_id } }, body })),
    onSuccess: (e) => {
      void qc.invalidateQueries({ queryKey: sessionKeys.coordination(s.spec_task_id) })
      toast('ok', `Sent: ${e.kind} to session ${e.to_session_id ?? 'everyone'}`)
      close()
    },
    onError: (err) => toast('error', `Not sent: ${errorMessage(err)}`),
  })
  const decide = useMutation({
    mutationFn: (decision: 'retry' | 'cancel') =>
      unwrap(api.POST('/api/v1/sessions/{id}/{decision}', { params: { path: { id: s.id, decision } } })),
    onSuccess: (next, decision) => {
      qc.setQueryData(sessionKeys.session(s.id), next)
      toast('ok', `${decision === 'retry' ? 'Retry' : 'Cancel'}: session ${s.id} is now ${next.status}`)
      close()
    },
    onError: (err, decision) => toast('error', `${decision === 'retry' ? 'Retry' : 'Cancel'} refused: ${errorMessage(err)}`),
  })

  const ended = ENDED.has(s.status)
  return (
    <div className="session-actions" role="group" aria-label="Session actions">
      <button type="button" className="btn btn-sm" onClick={() => setOpen('message')}>
        Send a message
      </button>
      <button type="button" className="btn btn-sm" onClick={() => setOpen('handoff')} disabled={props.others.length === 0}>
        Hand off
      </button>
      {blocked ? (
        <button
          type="button"
          className="btn btn-sm btn-warn"
          disabled={post.isPending}
          onClick={() => post.mutate({ kind: 'unblocked', to_session_id: s.id, message: 'Unblocked by a person.' })}
        >
          Unblock
        </button>
      ) : (
        <button type="button" className="btn btn-sm" onClick={() => setOpen('block')} disabled={ended}>
          Block
        </button>
      )}
      {RETRYABLE.has(s.status) && (
        <button type="button" className="btn btn-sm btn-primary" disabled={decide.isPending} onClick={() => decide.mutate('retry')}>
          Retry
        </button>
      )}
      {!ended && (
        <button type="button" className="btn btn-sm btn-danger-text" onClick={() => setOpen('cancel')}>
          Cancel session
        </button>
      )}

      <Dialog open={open === 'message'} title={`Message session ${s.id}`} onClose={close}>
        <TextForm
          label="Message"
          hint="Delivered into the session's next turn (a notification from a person)."
          submit="Send"
          busy={post.isPending}
          onSubmit={(message) => post.mutate({ kind: 'notification', to_session_id: s.id, message })}
          onCancel={close}
        />
      </Dialog>
      <Dialog open={open === 'handoff'} title={`Hand off from session ${s.id}`} onClose={close}>
        <TextForm
          label="What to hand off"
          hint="Sent as a handoff from this session to the one you pick."
          submit="Hand off"
          busy={post.isPending}
          targets={props.others}
          onSubmit={(message, to) => post.mutate({ kind: 'handoff', from_session_id: s.id, to_session_id: to, message })}
          onCancel={close}
        />
      </Dialog>
      <Dialog open={open === 'block'} title={`Block session ${s.id}`} onClose={close}>
        <TextForm
          label="Why"
          hint="The session is held (nothing of it merges) until it is unblocked."
          submit="Block"
          busy={post.isPending}
          onSubmit={(message) => post.mutate({ kind: 'blocking', to_session_id: s.id, message })}
          onCancel={close}
        />
      </Dialog>
      <Dialog open={open === 'cancel'} title={`Cancel session ${s.id}?`} onClose={close}>
        <p>
          <strong>{s.name}</strong>: its turn is cancelled and it stops. Its branch
          {s.branch ? <> <code>{s.branch}</code></> : ''} and worktree are kept; you can retry it later.
        </p>
        <div className="dialog-actions">
          <button type="button" className="btn" onClick={close}>
            Keep it running
          </button>
          <button type="button" className="btn btn-danger" disabled={decide.isPending} onClick={() => decide.mutate('cancel')}>
            Cancel the session
          </button>
        </div>
      </Dialog>
    </div>
  )
})

function TextForm(props: {
  label: string
  hint: string
  submit: string
  busy: boolean
  targets?: WorkSession[]
  onSubmit: (message: string, to?: number) => void
  onCancel: () => void
}) {
  const [text, setText] = useState('')
  const [to, setTo] = useState<number | undefined>(props.targets?.[0]?.id)
  const submit = (e: FormEvent) => {
    e.preventDefault()
    if (text.trim()) props.onSubmit(text.trim(), to)
  }
  return (
    <form className="form" onSubmit={submit}>
      {props.targets && (
        <>
          <label htmlFor="coord-to">To session</label>
          <select id="coord-to" value={to} onChange={(e) => setTo(Number(e.target.value))}>
            {props.targets.map((t) => (
              <option key={t.id} value={t.id}>
                #{t.id} {t.name} ({t.status})
              </option>
            ))}
          </select>
        </>
      )}
      <label htmlFor="coord-text">{props.label}</label>
      <textarea id="coord-text" rows={4} value={text} onChange={(e) => setText(e.target.value)} autoFocus required />
      <p className="muted small m0">{props.hint}</p>
      <div className="dialog-actions">
        <button type="button" className="btn" onClick={props.onCancel}>
          Close
        </button>
        <button type="submit" className="btn btn-primary" disabled={props.busy || !text.trim()}>
          {props.submit}
        </button>
      </div>
    </form>
  )
}
