import { memo } from 'react'
import { useQuery } from '@tanstack/react-query'
import { overviewQuery } from '../../shared/api/queries'
import type { Action, SpecTask } from '../../shared/api/types'
import { PriorityBadge, ProgressBar } from '../../shared/ui/bits'
import { useInView } from '../../shared/lib/useInView'
import { STATUS_LABEL } from '../../shared/lib/format'

/** Statuses whose card shows live progress from the task's overview. */
const LIVE = new Set(['implementing', 'implementation_review'])

interface Need {
  kind: string
  text: string
}

function needsFromStatus(t: SpecTask, permissions: number): Need[] {
  const out: Need[] = []
  if (t.status === 'spec_review') out.push({ kind: 'review', text: 'Spec ready for review' })
  if (t.status === 'implementation_review') out.push({ kind: 'review', text: 'Work ready for review' })
  if (t.status === 'failed')
    out.push({ kind: 'failed', text: `Failed${t.failed_phase ? ` in ${t.failed_phase}` : ''}${t.failure_reason ? `: ${t.failure_reason}` : ''}` })
  if (permissions > 0) out.push({ kind: 'permission', text: `${permissions} permission${permissions > 1 ? 's' : ''} waiting` })
  return out
}

export const TaskCard = memo(function TaskCard(props: {
  task: SpecTask
  permissions: number
  projectName?: string | undefined
  onCancel: (t: SpecTask) => void
  onAction: (t: SpecTask, a: Action) => void
  busy: boolean
  /** Follows the card's links inside the app (plain anchors: cheaper than 1,000 <Link>s). */
  onOpen: (e: React.MouseEvent<HTMLAnchorElement>) => void
}) {
  const { task: t } = props
  const needs = needsFromStatus(t, props.permissions)
  const queued = t.status === 'planning_queued' || t.status === 'implementation_queued'
  const canCancel = !['done', 'cancelled', 'rejected'].includes(t.status)
  return (
    <article className={`card card-${t.status}`} data-task-id={t.id} data-status={t.status} aria-labelledby={`card-${t.id}`}>
      <div className="card-top">
        <span className="card-id">#{t.id}</span>
        <PriorityBadge priority={t.priority} />
        <span className="badge type">{t.task_type}</span>
        {queued && <span className="badge queued">queued</span>}
        {props.projectName && <span className="card-project muted">{props.projectName}</span>}
      </div>
      <a href={`/tasks/${t.id}`} className="card-title" id={`card-${t.id}`} data-card onClick={props.onOpen}>
        {t.title}
      </a>
      {t.status === 'planning' && (
        <p className="card-running">
          <span className="pulse" aria-hidden="true" /> agent writing the spec
        </p>
      )}
      {LIVE.has(t.status) && <CardProgress id={t.id} />}
      {t.status === 'done' && <ProgressBar fraction={1} label={`Task #${t.id} progress`} />}
      {needs.length > 0 && (
        <ul className="needs" aria-label="Needs a person">
          {needs.map((n, i) => (
            <li key={i} className={`need need-${n.kind}`}>
              {n.text}
            </li>
          ))}
        </ul>
      )}
      <div className="card-actions">
        {t.status === 'backlog' && (
          <button
            type="button"
            className="btn btn-sm"
            disabled={props.busy}
            onClick={() => props.onAction(t, 'start-planning')}
            aria-label={`Start planning task #${t.id}`}
          >
            Start planning
          </button>
        )}
        {t.status === 'failed' && (
          <button
            type="button"
            className="btn btn-sm"
            disabled={props.busy}
            onClick={() => props.onAction(t, 'retry')}
            aria-label={`Retry task #${t.id}`}
          >
            Retry
          </button>
        )}
        {t.status === 'spec_review' && (
          <a href={`/tasks/${t.id}/spec`} onClick={props.onOpen} className="btn btn-sm btn-primary" aria-label={`Review the spec of task #${t.id}`}>
            Review spec
          </a>
        )}
        {canCancel && (
          <button
            type="button"
            className="btn btn-sm btn-ghost"
            onClick={() => props.onCancel(t)}
            aria-label={`Cancel task #${t.id}`}
            title={`Cancel (now ${STATUS_LABEL[t.status]})`}
          >
            Cancel
          </button>
        )}
      </div>
    </article>
  )
})

function CardProgress({ id }: { id: number }) {
  const [ref, inView] = useInView<HTMLDivElement>()
  const overview = useQuery({ ...overviewQuery(id), enabled: inView })
  const p = overview.data?.progress
  const needs = overview.data?.needs_person.filter((n) => n.kind !== 'review' && n.kind !== 'task_failed') ?? []
  return (
    <div ref={ref} className="card-progress">
      <ProgressBar fraction={p?.fraction ?? 0} label={`Task #${id} progress`} />
      <p className="muted small">
        {p ? `${p.tasks_done}/${p.tasks_total} tasks · ${p.sessions_running} running` : '…'}
      </p>
      {needs.length > 0 && (
        <ul className="needs" aria-label="Needs a person">
          {needs.slice(0, 3).map((n, i) => (
            <li key={i} className={`need need-${n.kind}`} title={n.message}>
              {n.kind === 'conflict' ? 'Merge conflict' : n.kind === 'permission' ? 'Permission waiting' : n.kind === 'blocked' ? 'Session blocked' : 'Session failed'}
              {n.task_key ? ` (task ${n.task_key})` : ''}
            </li>
          ))}
        </ul>
      )}
    </div>
  )
}
