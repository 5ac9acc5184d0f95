import { Navigate, NavLink, Route, Routes, useLocation, useParams } from 'react-router'
import { useQuery, useQueryClient } from '@tanstack/react-query'
import { keys, projectQuery, taskQuery } from '../../shared/api/queries'
import { ACTION_LABEL, actionsFor, useTaskAction } from '../../shared/api/actions'
import type { SpecTask } from '../../shared/api/types'
import { ErrorNote, Loading, PriorityBadge, StatusBadge } from '../../shared/ui/bits'
import { HistoryTab } from './HistoryTab'
import { lazy, Suspense, useEffect, useState } from 'react'
import { implementationTab, loadImplementation, prefetchImplementation } from './prefetch'
import { ConfirmCancel } from '../board/ConfirmCancel'
import { ago, dateTime } from '../../shared/lib/format'

// The spec review brings markdown and highlighting: loaded when first opened.
const SpecReview = lazy(() => import('../spec/SpecReview').then((m) => ({ default: m.SpecReview })))

const IMPLEMENTATION_PHASE = new Set(['implementation_queued', 'implementing', 'implementation_review', 'done'])

export function TaskPage() {
  const id = Number(useParams().id)
  const qc = useQueryClient()
  const task = useQuery({
    ...taskQuery(id),
    enabled: Number.isInteger(id),
    // Coming from the board: its list has the task, so the page shows at once.
    placeholderData: () => qc.getQueryData<SpecTask[]>(keys.tasks)?.find((t) => t.id === id),
  })
  // The implementation tab's code and its one read start beside the task's, not after
  // it; during render, so they leave at once. In the implementation phase the task's
  // address leads to the tab, and its other tabs are a click away from it: they start
  // as soon as the task's status is known.
  const path = useLocation().pathname
  const status = task.data?.status
  const toImplementation = /\/implementation\/?$/.test(path) || (status !== undefined && IMPLEMENTATION_PHASE.has(status))
  const [prefetched, setPrefetched] = useState<number | null>(null)
  if (toImplementation && prefetched !== id) {
    prefetchImplementation(qc, id)
    setPrefetched(id)
  }
  if (!Number.isInteger(id)) return <ErrorNote error={new Error('not a task id')} />
  if (task.isError) return <section className="page"><ErrorNote error={task.error} title={`Task #${id}`} /></section>
  if (!task.data) return <section className="page"><Loading what={`task #${id}`} /></section>
  const t = task.data
  return (
    <section className="page task-page" aria-labelledby="task-title">
      <TaskHeader task={t} />
      <nav className="tabs" aria-label="Task views">
        <NavLink to={`/tasks/${id}/spec`}>Spec</NavLink>
        <NavLink
          to={`/tasks/${id}/implementation`}
          onPointerEnter={() => prefetchImplementation(qc, id)}
          onFocus={() => prefetchImplementation(qc, id)}
        >
          Implementation
        </NavLink>
        <NavLink to={`/tasks/${id}/history`}>History</NavLink>
      </nav>
      <Routes>
        <Route
          index
          element={<Navigate to={IMPLEMENTATION_PHASE.has(t.status) ? 'implementation' : 'spec'} replace />}
        />
        <Route
          path="spec"
          element={
            <Suspense fallback={<Loading what="the spec review" />}>
              <SpecReview task={t} />
            </Suspense>
          }
        />
        <Route
          path="implementation"
          element={<ImplementationRoute task={t} />}
        />
        <Route path="history" element={<HistoryTab task={t} />} />
        <Route path="*" element={<Navigate to={`/tasks/${id}`} replace />} />
      </Routes>
    </section>
  )
}

/**
 * The implementation tab once its chunk is here. Not React.lazy: a Suspense boundary
 * that showed its fallback reveals its content no sooner than 300 ms later (React's
 * throttle), which was most of the tab's time; so the module is awaited in state.
 */
function ImplementationRoute({ task }: { task: SpecTask }) {
  const [Tab, setTab] = useState(() => implementationTab())
  const [error, setError] = useState<unknown>(null)
  useEffect(() => {
    if (Tab) return
    let live = true
    loadImplementation().then(
      (c) => live && setTab(() => c),
      (err: unknown) => live && setError(err),
    )
    return () => {
      live = false
    }
  }, [Tab])
  if (error) return <ErrorNote error={error} title="The implementation tab did not load" />
  if (!Tab) return <Loading what="progress" />
  return <Tab task={task} />
}

function TaskHeader({ task: t }: { task: SpecTask }) {
  const action = useTaskAction(t.id)
  const project = useQuery(projectQuery(t.project_id))
  const [cancelling, setCancelling] = useState(false)
  // Review verdicts live on the spec tab, where the spec is read; the rest are here.
  const actions = actionsFor(t.status).filter((a) => t.status !== 'spec_review' || a === 'cancel')
  return (
    <header className="task-head">
      <div className="task-head-main">
        <p className="crumbs">
          <a href="/" onClick={(e) => { e.preventDefault(); history.length > 1 ? history.back() : (location.href = '/') }}>
            ← Board
          </a>
          <span className="muted"> · {project.data?.name ?? `project ${t.project_id}`}</span>
        </p>
        <h1 id="task-title">
          <span className="muted">#{t.id}</span> {t.title}
        </h1>
        <div className="task-meta">
          <StatusBadge status={t.status} />
          <PriorityBadge priority={t.priority} />
          <span className="badge type">{t.task_type}</span>
          <span className="meta-item">
            <span className="muted">branch</span> <code>{t.branch}</code>
          </span>
          <span className="meta-item">
            <span className="muted">agent</span> {t.agent_profile ?? 'default'}
          </span>
          {t.max_parallel_sessions != null && (
            <span className="meta-item">
              <span className="muted">parallel</span> {t.max_parallel_sessions}
            </span>
          )}
          <span className="meta-item muted" title={dateTime(t.updated_at)}>
            updated {ago(t.updated_at)}
          </span>
        </div>
        {t.status === 'failed' && (
          <p className="note note-error" role="status">
            Failed{t.failed_phase ? ` in ${t.failed_phase}` : ''}: {t.failure_reason ?? 'no reason given'}
          </p>
        )}
      </div>
      <div className="task-actions">
        {actions.map((a) =>
          a === 'cancel' ? (
            <button key={a} type="button" className="btn btn-ghost" onClick={() => setCancelling(true)}>
              Cancel task
            </button>
          ) : (
            <button
              key={a}
              type="button"
              className={a === 'start-planning' || a === 'retry' || a === 'approve' ? 'btn btn-primary' : 'btn'}
              disabled={action.isPending}
              onClick={() => action.mutate(a)}
            >
              {ACTION_LABEL[a]}
            </button>
          ),
        )}
      </div>
      <ConfirmCancel task={cancelling ? t : null} onClose={() => setCancelling(false)} />
    </header>
  )
}
