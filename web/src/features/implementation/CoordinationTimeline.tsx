// Every coordination event of the task, oldest first: kind, from → to, the message,
// acknowledged or not, and what a person can do about it: answer a request,
// unblock a held session, acknowledge what is addressed to people, retry / skip a
// conflicted session.
import { memo, useState, type FormEvent } from 'react'
import { useQuery } from '@tanstack/react-query'
import { Link } from 'react-router'
import { errorMessage } from '../../shared/api/client'
import { dateTime } from '../../shared/lib/format'
import { Empty, ErrorNote, Loading } from '../../shared/ui/bits'
import { coordinationQuery, useAcknowledge, usePostCoordination } from './api'
import { SessionDecisions } from './Decisions'
import type { CoordinationEvent, CoordinationKind, WorkSession } from './types'

const PEOPLE: ReadonlySet<CoordinationKind> = new Set(['request', 'notification', 'conflict'])

export const CoordinationTimeline = memo(function CoordinationTimeline({
  taskId,
  sessions,
}: {
  taskId: number
  sessions: Map<number, WorkSession>
}) {
  const q = useQuery(coordinationQuery(taskId))
  if (q.isError) return <ErrorNote error={q.error} />
  if (!q.data) return <Loading what="coordination events" />
  const list = q.data
  if (list.length === 0) return <Empty>No coordination events yet: sessions post them as they hand off, block, ask and finish.</Empty>
  // Who is held now: the latest blocking/unblocked event addressed to a session decides.
  const held = new Map<number, number>()
  for (const e of list) {
    if (e.to_session_id == null) continue
    if (e.kind === 'blocking') held.set(e.to_session_id, e.id)
    if (e.kind === 'unblocked') held.delete(e.to_session_id)
  }
  return (
    <ol className="ctl" aria-label="Coordination events" data-testid="coordination">
      {list.map((e) => (
        <Row key={e.id} e={e} taskId={taskId} sessions={sessions} heldBy={e.to_session_id != null && held.get(e.to_session_id) === e.id} />
      ))}
    </ol>
  )
})

function who(id: number | null | undefined, sessions: Map<number, WorkSession>, none: string) {
  if (id == null) return <span>{none}</span>
  const s = sessions.get(id)
  return (
    <Link to={`/sessions/${id}`} title={s?.name}>
      session #{id}
    </Link>
  )
}

function Row({
  e,
  taskId,
  sessions,
  heldBy,
}: {
  e: CoordinationEvent
  taskId: number
  sessions: Map<number, WorkSession>
  heldBy: boolean
}) {
  const [answering, setAnswering] = useState(false)
  const ack = useAcknowledge(taskId)
  const post = usePostCoordination(taskId)
  const acked = e.acknowledged_at != null
  const conflicted = e.kind === 'conflict' && e.from_session_id != null ? sessions.get(e.from_session_id) : undefined
  // People acknowledge what is addressed to them (no session): a request, a
  // notification, a conflict. The rest is for sessions, which acknowledge it as they
  // read it; a person acknowledging it would keep it from them.
  const forPeople = e.to_session_id == null && PEOPLE.has(e.kind)
  const canAck = !acked && forPeople
  return (
    <li className={`ctl-item ctl-${e.kind}${acked ? ' acked' : ''}`} data-coordination-id={e.id} data-kind={e.kind}>
      <div className="ctl-head">
        <span className={`badge ck-${e.kind}`}>{e.kind}</span>
        <span className="ctl-route small">
          {who(e.from_session_id, sessions, 'a person')} → {who(e.to_session_id, sessions, e.kind === 'broadcast' ? 'every session' : 'people / every session')}
        </span>
        <span className="muted small" title={dateTime(e.created_at)}>
          {new Date(e.created_at).toLocaleTimeString()}
        </span>
        <span className={`small ${acked || !forPeople ? 'muted' : 'ctl-unacked'}`}>
          {acked
            ? `acknowledged${e.acknowledged_by != null ? ` by session #${e.acknowledged_by}` : ' by a person'}`
            : 'not acknowledged'}
        </span>
      </div>
      <p className="ctl-msg">{e.message}</p>
      <div className="ctl-actions">
        {e.kind === 'request' && !acked && (
          <button type="button" className="btn btn-sm btn-primary" aria-expanded={answering} onClick={() => setAnswering((a) => !a)}>
            Answer
          </button>
        )}
        {heldBy && e.to_session_id != null && (
          <button
            type="button"
            className="btn btn-sm btn-primary"
            disabled={post.isPending}
            aria-label={`Unblock session ${e.to_session_id}`}
            onClick={() => post.mutate({ kind: 'unblocked', to_session_id: e.to_session_id, message: 'Unblocked by a person' })}
          >
            Unblock
          </button>
        )}
        {canAck && (
          <button type="button" className="btn btn-sm" disabled={ack.isPending} aria-label={`Acknowledge event ${e.id}`} onClick={() => ack.mutate(e.id)}>
            Acknowledge
          </button>
        )}
        {conflicted && conflicted.status === 'conflicted' && <SessionDecisions taskId={taskId} session={conflicted} />}
        {post.isError && !answering && <span className="field-error">{errorMessage(post.error)}</span>}
      </div>
      {answering && <Answer e={e} taskId={taskId} onDone={() => setAnswering(false)} />}
    </li>
  )
}

function Answer({ e, taskId, onDone }: { e: CoordinationEvent; taskId: number; onDone: () => void }) {
  const [text, setText] = useState('')
  const post = usePostCoordination(taskId)
  const ack = useAcknowledge(taskId)
  const [error, setError] = useState<string | null>(null)
  const submit = (ev: FormEvent) => {
    ev.preventDefault()
    if (!text.trim()) {
      setError('message: must not be empty')
      return
    }
    post.mutate(
      { kind: 'response', to_session_id: e.from_session_id ?? null, message: text.trim(), payload: { in_reply_to: e.id } },
      {
        onSuccess: () => {
          // The request is answered: it no longer waits (a second one is refused, fine).
          ack.mutate(e.id)
          onDone()
        },
        onError: (err) => setError(errorMessage(err)),
      },
    )
  }
  const id = `answer-${e.id}`
  return (
    <form className="ctl-answer" onSubmit={submit}>
      <label htmlFor={id}>Answer to {e.from_session_id != null ? `session #${e.from_session_id}` : 'the request'}</label>
      <textarea id={id} rows={2} value={text} onChange={(x) => setText(x.target.value)} aria-invalid={!!error} />
      {error && (
        <p className="field-error" role="alert">
          {error}
        </p>
      )}
      <div className="row-actions">
        <button type="submit" className="btn btn-sm btn-primary" disabled={post.isPending}>
          Send answer
        </button>
        <button type="button" className="btn btn-sm" onClick={onDone}>
          Cancel
        </button>
      </div>
    </form>
  )
}
