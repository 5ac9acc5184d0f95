// `/tasks/:id/spec?v=N&doc=requirements.md&view=source&line=12`: the three documents,
// the validation report, the diff from the previous version, comments, and the
// verdicts. Every part of it is in the URL, so it deep-links and back/forward work.
import { useCallback, useMemo, useState, type FormEvent } from 'react'
import { useSearchParams } from 'react-router'
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { api, errorMessage, unwrap } from '../../shared/api/client'
import { keys, upsertTask, versionQuery, versionsQuery } from '../../shared/api/queries'
import { useTaskAction } from '../../shared/api/actions'
import type { ReviewComment, SpecTask, SpecVersionView } from '../../shared/api/types'
import { Empty, ErrorNote, Loading } from '../../shared/ui/bits'
import { Dialog } from '../../shared/ui/Dialog'
import { toast } from '../../shared/ui/toast'
import { useShortcut } from '../../shared/lib/shortcuts'
import { ago, dateTime, label } from '../../shared/lib/format'
import { DocumentView, type Anchor } from './DocumentView'
import { CommentsPanel } from './CommentsPanel'
import { ReportPanel } from './ReportPanel'
import { DiffView } from './DiffView'
import { PlanningProgress } from './PlanningProgress'

export function SpecReview({ task }: { task: SpecTask }) {
  const [params] = useSearchParams()
  const versions = useQuery(versionsQuery(task.id))
  const planning = task.status === 'planning' || task.status === 'planning_queued'
  const list = versions.data ?? []
  const latest = list.at(-1)?.number ?? 0
  const requested = Number(params.get('v'))
  const number = requested && list.some((v) => v.number === requested) ? requested : latest

  return (
    <div className="spec">
      {planning && <PlanningProgress task={task} />}
      {versions.isError && <ErrorNote error={versions.error} />}
      {versions.isPending ? (
        <Loading what="spec versions" />
      ) : list.length === 0 ? (
        !planning && (
          <Empty>
            {task.status === 'backlog'
              ? 'No spec yet. Start planning and the agent writes requirements.md, design.md and tasks.md.'
              : 'This task has no spec version.'}
          </Empty>
        )
      ) : (
        <VersionView task={task} number={number} latest={latest} numbers={list.map((v) => v.number)} />
      )}
    </div>
  )
}

function VersionView({ task, number, latest, numbers }: { task: SpecTask; number: number; latest: number; numbers: number[] }) {
  const [params, setParams] = useSearchParams()
  const view = useQuery(versionQuery(task.id, number))
  const [anchor, setAnchor] = useState<Anchor | null>(null)
  const [highlight, setHighlight] = useState<number | null>(null)

  const set = useCallback(
    (patch: Record<string, string | null>, replace = false) => {
      const next = new URLSearchParams(params)
      for (const [k, v] of Object.entries(patch)) {
        if (v === null) next.delete(k)
        else next.set(k, v)
      }
      setParams(next, { replace })
    },
    [params, setParams],
  )

  if (view.isError) return <ErrorNote error={view.error} title={`Spec version ${number}`} />
  if (!view.data) return <Loading what={`spec version ${number}`} />
  const v = view.data
  const docs = v.documents
  const tab = params.get('doc') ?? docs[0]?.name ?? 'report'
  const mode = params.get('view') === 'source' ? 'source' : 'rendered'
  const focusLine = params.get('line') ? Number(params.get('line')) : null
  const doc = docs.find((d) => d.name === tab)
  const openComments = v.comments.filter((c) => !c.resolved)

  const jump = (document: string, line?: number | null) => {
    setAnchor(null)
    set({ doc: document, line: line ? String(line) : null })
  }
  const jumpToComment = (c: ReviewComment) => {
    setHighlight(c.id)
    set({ doc: c.document, line: c.line_start != null ? String(c.line_start) : null })
  }

  return (
    <>
      <div className="version-bar">
        <div className="version-picker" role="group" aria-label="Spec version">
          <span className="muted">Version</span>
          {numbers.map((n) => (
            <button
              key={n}
              type="button"
              className={`chip ${n === number ? 'chip-on' : ''}`}
              aria-pressed={n === number}
              aria-label={`Version ${n}${n === latest ? ' (latest)' : ''}`}
              onClick={() => {
                setAnchor(null)
                set({ v: String(n), line: null })
              }}
            >
              v{n}
              {n === latest && numbers.length > 1 ? ' · latest' : ''}
            </button>
          ))}
        </div>
        <p className="muted small version-meta">
          <code title={v.version.commit_sha}>{v.version.commit_sha.slice(0, 10)}</code> ·{' '}
          <span title={dateTime(v.version.created_at)}>{ago(v.version.created_at)}</span>
          {v.reviews.map((r) => (
            <span key={r.id} className={`badge verdict-${r.verdict}`}>
              {label(r.verdict)}
            </span>
          ))}
        </p>
      </div>

      <ReviewActions task={task} view={v} latest={latest} openComments={openComments.length} />

      <div className="spec-layout">
        <div className="spec-main">
          <div className="doc-tabs-row">
            <nav className="doc-tabs" aria-label="Spec documents">
              {docs.map((d) => (
                <button
                  key={d.name}
                  type="button"
                  className={`tab ${tab === d.name ? 'tab-on' : ''}`}
                  aria-current={tab === d.name ? 'page' : undefined}
                  onClick={() => jump(d.name)}
                >
                  {d.name}
                  {(() => {
                    const n = openComments.filter((c) => c.document === d.name).length
                    return n ? <span className="tab-count" aria-label={`${n} open comments`}>{n}</span> : null
                  })()}
                </button>
              ))}
              <button
                type="button"
                className={`tab ${tab === 'report' ? 'tab-on' : ''}`}
                aria-current={tab === 'report' ? 'page' : undefined}
                onClick={() => jump('report')}
              >
                Validation
                {v.report.errors.length > 0 && (
                  <span className="tab-count tab-count-bad" aria-label={`${v.report.errors.length} errors`}>
                    {v.report.errors.length}
                  </span>
                )}
              </button>
              {number > 1 && (
                <button
                  type="button"
                  className={`tab ${tab === 'diff' ? 'tab-on' : ''}`}
                  aria-current={tab === 'diff' ? 'page' : undefined}
                  onClick={() => jump('diff')}
                >
                  Changes from v{number - 1}
                </button>
              )}
            </nav>
            {doc && (
              <div className="seg" role="group" aria-label="Document view">
                <button type="button" aria-pressed={mode === 'rendered'} className={mode === 'rendered' ? 'on' : ''} onClick={() => set({ view: null }, true)}>
                  Rendered
                </button>
                <button type="button" aria-pressed={mode === 'source'} className={mode === 'source' ? 'on' : ''} onClick={() => set({ view: 'source' }, true)}>
                  Source
                </button>
              </div>
            )}
          </div>
          {doc ? (
            <DocumentView
              name={doc.name}
              raw={doc.raw}
              mode={mode}
              comments={v.comments.filter((c) => c.document === doc.name)}
              findings={v.report}
              focusLine={focusLine}
              onAnchor={setAnchor}
              onShowComment={setHighlight}
            />
          ) : tab === 'diff' ? (
            <DiffView diff={v.diff_from_previous} from={number - 1} to={number} />
          ) : (
            <ReportPanel report={v.report} onJump={jump} />
          )}
        </div>
        <CommentsPanel
          taskId={task.id}
          version={number}
          document={doc ? doc.name : null}
          comments={v.comments}
          anchor={anchor}
          setAnchor={setAnchor}
          highlight={highlight}
          onJump={jumpToComment}
          canComment={doc != null}
        />
      </div>
    </>
  )
}

function ReviewActions({ task, view, latest, openComments }: { task: SpecTask; view: SpecVersionView; latest: number; openComments: number }) {
  const action = useTaskAction(task.id)
  const [, setParams] = useSearchParams()
  const [rejecting, setRejecting] = useState(false)
  const [refusal, setRefusal] = useState<string | null>(null)
  const inReview = task.status === 'spec_review'
  const isLatest = view.version.number === latest
  const errors = view.report.errors.length

  const run = (a: 'approve' | 'request-changes') => {
    setRefusal(null)
    action.mutate(a, { onError: (err) => setRefusal(errorMessage(err)) })
  }
  useShortcut('a', useCallback(() => run('approve'), [task.id]), inReview && isLatest) // eslint-disable-line react-hooks/exhaustive-deps

  const blocked = useMemo(
    () => (errors ? `Version ${view.version.number} has ${errors} error${errors > 1 ? 's' : ''}: it cannot be approved. Request changes (the agent gets the errors and your comments) or reject it.` : null),
    [errors, view.version.number],
  )

  if (!inReview) {
    return (
      <p className="review-state muted" role="status">
        {task.status === 'planning' || task.status === 'planning_queued'
          ? 'A new version is being written; review it when planning ends.'
          : `The task is ${label(task.status).toLowerCase()}: the spec is not waiting for a review.`}
      </p>
    )
  }
  if (!isLatest) {
    return (
      <p className="review-state note">
        You are reading version {view.version.number}. The review is of the latest,{' '}
        <button type="button" className="link-btn" onClick={() => setParams({ v: String(latest) })}>
          version {latest}
        </button>
        .
      </p>
    )
  }
  return (
    <div className="review-actions" aria-label="Review">
      {blocked && (
        <div className="note note-error" data-testid="approve-blocked">
          <p className="m0">{blocked}</p>
          <ul className="findings findings-error">
            {view.report.errors.slice(0, 5).map((f, i) => (
              <li key={i}>
                <button type="button" className="link-btn" onClick={() => setParams((p) => { const n = new URLSearchParams(p); n.set('doc', f.document); if (f.line) n.set('line', String(f.line)); else n.delete('line'); return n })}>
                  {f.document}
                  {f.line ? `:${f.line}` : ''}
                </button>{' '}
                {f.message}
              </li>
            ))}
            {errors > 5 && <li>… and {errors - 5} more in Validation</li>}
          </ul>
        </div>
      )}
      <div className="row-actions">
        <button
          type="button"
          className={`btn ${errors ? 'btn-warn' : 'btn-primary'}`}
          onClick={() => run('approve')}
          disabled={action.isPending}
          aria-keyshortcuts="a"
          aria-describedby={blocked ? 'approve-why' : undefined}
          title={blocked ?? 'Approve this spec (a)'}
        >
          Approve
        </button>
        <span id="approve-why" className="visually-hidden">
          {blocked}
        </span>
        <button type="button" className="btn" onClick={() => run('request-changes')} disabled={action.isPending}>
          Request changes{openComments ? ` (${openComments} open comment${openComments > 1 ? 's' : ''})` : ''}
        </button>
        <button type="button" className="btn btn-ghost btn-danger-text" onClick={() => setRejecting(true)} disabled={action.isPending}>
          Reject…
        </button>
      </div>
      {refusal && (
        <div className="note note-error refusal" role="alert" data-testid="action-refused">
          <strong>The server refused:</strong>
          <pre>{refusal}</pre>
        </div>
      )}
      <RejectDialog open={rejecting} task={task} view={view} onClose={() => setRejecting(false)} />
    </div>
  )
}

function RejectDialog({ open, task, view, onClose }: { open: boolean; task: SpecTask; view: SpecVersionView; onClose: () => void }) {
  const qc = useQueryClient()
  const [reason, setReason] = useState('')
  const [error, setError] = useState<string | null>(null)
  const reject = useMutation({
    mutationFn: async () => {
      const document = view.documents[0]?.name ?? 'requirements.md'
      await unwrap(
        api.POST('/api/v1/spec-tasks/{id}/spec-versions/{number}/comments', {
          params: { path: { id: task.id, number: view.version.number } },
          body: { document, body: `Rejected: ${reason.trim()}` },
        }),
      )
      return unwrap(api.POST('/api/v1/spec-tasks/{id}/{action}', { params: { path: { id: task.id, action: 'reject' } } }))
    },
    onSuccess: (t) => {
      upsertTask(qc, t)
      void qc.invalidateQueries({ queryKey: keys.version(task.id, view.version.number) })
      toast('ok', `Task #${task.id} rejected`)
      onClose()
    },
    onError: (err) => setError(errorMessage(err)),
  })
  const submit = (e: FormEvent) => {
    e.preventDefault()
    if (!reason.trim()) {
      setError('Say why, so the reason is kept with the spec.')
      return
    }
    setError(null)
    reject.mutate()
  }
  return (
    <Dialog open={open} title={`Reject the spec of task #${task.id}`} onClose={onClose}>
      <form className="form" onSubmit={submit}>
        <p>The task is archived as rejected; its branch is kept. The reason is recorded as a comment on the spec.</p>
        <label htmlFor="reject-reason">Reason</label>
        <textarea id="reject-reason" rows={4} value={reason} onChange={(e) => setReason(e.target.value)} />
        {error && (
          <p className="note note-error" role="alert">
            {error}
          </p>
        )}
        <div className="dialog-actions">
          <button type="button" className="btn" onClick={onClose}>
            Keep reviewing
          </button>
          <button type="submit" className="btn btn-danger" disabled={reject.isPending}>
            Reject
          </button>
        </div>
      </form>
    </Dialog>
  )
}
