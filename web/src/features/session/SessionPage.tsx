// The page of one work session (/sessions/:id): its live transcript, the permission
// requests waiting for it, what it is (status, branch, worktree, attempt, tokens,
// cost), related sessions, its changes and coordination events, and controls.
import { useCallback, useMemo } from 'react'
import { Link, useParams } from 'react-router'
import { useQuery } from '@tanstack/react-query'
import { overviewQuery, taskQuery } from '../../shared/api/queries'
import type { WorkSession } from '../../shared/api/types'
import { ErrorNote, Loading } from '../../shared/ui/bits'
import { ago, dateTime, label } from '../../shared/lib/format'
import { coordinationQuery, sessionQuery, useSessionLive } from './api'
import { useTranscript, type TranscriptState } from './useTranscript'
import { VirtualList } from './VirtualList'
import { RowView } from './EntryView'
import type { Row } from './transcript'
import { PermissionsPanel } from './PermissionsPanel'
import { SessionActions } from './SessionActions'
import { ChangesPanel, CoordinationPanel, flatSessions, RelatedPanel, related } from './SidePanels'
import './session.css'

const rowKey = (r: Row) => r.key
const NO_EVENTS: never[] = []

export function SessionPage() {
  const id = Number(useParams().id)
  const valid = Number.isInteger(id) && id > 0
  const session = useQuery({ ...sessionQuery(id), enabled: valid })
  const taskId = session.data?.spec_task_id
  useSessionLive(id, taskId)
  // Not after the session: the transcript is asked for at once.
  const transcript = useTranscript(valid ? id : 0)
  if (!valid) return <section className="page"><ErrorNote error={new Error('not a session id')} /></section>
  if (session.isError) return <section className="page"><ErrorNote error={session.error} title={`Session #${id}`} /></section>
  if (!session.data) return <section className="page"><Loading what={`session #${id}`} /></section>
  return <SessionView session={session.data} transcript={transcript} />
}

function SessionView({ session: s, transcript }: { session: WorkSession; transcript: TranscriptState }) {
  const task = useQuery(taskQuery(s.spec_task_id))
  const overview = useQuery(overviewQuery(s.spec_task_id))
  const coordination = useQuery(coordinationQuery(s.spec_task_id))
  const worktree = s.worktree_path ?? null
  const render = useCallback((row: Row) => <RowView row={row} worktree={worktree} />, [worktree])

  const events = coordination.data ?? NO_EVENTS
  const blocked = useMemo(() => {
    const last = events.findLast(
      (e) => e.to_session_id === s.id && (e.kind === 'blocking' || e.kind === 'unblocked'),
    )
    return s.status === 'blocked' || last?.kind === 'blocking'
  }, [events, s.id, s.status])
  const rel = useMemo(() => related(s, overview.data), [s, overview.data])
  const others = useMemo(() => flatSessions(overview.data).filter((x) => x.id !== s.id), [overview.data, s.id])
  const working = s.status === 'running' || s.status === 'verifying' || s.status === 'merging'

  return (
    <section className="page session-page" aria-labelledby="session-title" data-session-id={s.id} data-status={s.status}>
      <header className="task-head session-head">
        <div className="task-head-main">
          <p className="crumbs">
            <Link to={`/tasks/${s.spec_task_id}/implementation`}>
              ← Task #{s.spec_task_id}
              {task.data ? ` · ${task.data.title}` : ''}
            </Link>
          </p>
          <h1 id="session-title">
            <span className="muted">Session #{s.id}</span> {s.name}
          </h1>
          <div className="task-meta">
            <span className={`badge ws-${s.status}`} data-testid="session-status">
              {label(s.status)}
            </span>
            <span className="badge type">{label(s.kind)}</span>
            <span className="meta-item">
              <span className="muted">attempt</span> {s.attempt}
            </span>
            {s.branch && (
              <span className="meta-item">
                <span className="muted">branch</span> <code>{s.branch}</code>
              </span>
            )}
            <span className="meta-item">
              <span className="muted">tokens</span> {s.input_tokens.toLocaleString('en')} in · {s.output_tokens.toLocaleString('en')} out
            </span>
            <span className="meta-item">
              <span className="muted">cost</span> ${s.cost_usd.toFixed(2)}
            </span>
            <span className="meta-item muted" title={dateTime(s.updated_at)}>
              updated {ago(s.updated_at)}
            </span>
          </div>
          {worktree && (
            <p className="small session-worktree">
              <span className="muted">worktree</span> <code>{worktree}</code>
            </p>
          )}
          {s.failure_reason && (
            <p className="note note-error" role="status">
              {label(s.status)}: {s.failure_reason}
            </p>
          )}
        </div>
        <SessionActions session={s} blocked={blocked} others={others} />
      </header>

      <PermissionsPanel sessionId={s.id} />

      <div className="session-layout">
        <section
          className="panel transcript-panel"
          aria-labelledby="transcript-h"
          data-testid="transcript"
          data-count={transcript.count}
          data-last-id={transcript.lastId}
        >
          <h2 id="transcript-h">
            {working && <span className="pulse" aria-hidden="true" />} Transcript{' '}
            <span className="muted small">
              {transcript.count.toLocaleString('en')} entries{working ? ' · live' : ''}
            </span>
          </h2>
          {transcript.error ? <ErrorNote error={transcript.error} title="Transcript" /> : null}
          {!transcript.loaded ? (
            <Loading what="the transcript" />
          ) : transcript.rows.length === 0 ? (
            <p className="muted">Nothing yet: the session has not said anything.</p>
          ) : null}
          <VirtualList items={transcript.rows} itemKey={rowKey} render={render} label="Session transcript" estimate={44} />
        </section>
        <aside className="session-side" aria-label="About this session">
          <RelatedPanel rel={rel} />
          <ChangesPanel sessionId={s.id} />
          <CoordinationPanel sessionId={s.id} events={events} />
        </aside>
      </div>
    </section>
  )
}
