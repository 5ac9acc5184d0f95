// Progress: overall, what runs now, and per plan task (expandable to its sub-items)
// with its sessions, attempts and time spent.
import { memo, useState } from 'react'
import { Link } from 'react-router'
import { label } from '../../shared/lib/format'
import { ProgressBar } from '../../shared/ui/bits'
import { TaskDecisions } from './Decisions'
import { span, useNow } from './time'
import { WORKING, type Overview, type TaskProgress, type WorkSession } from './types'

export const ProgressPanel = memo(function ProgressPanel({
  overview: o,
  sessions,
}: {
  overview: Overview
  sessions: Map<number, WorkSession>
}) {
  const p = o.progress
  const running = [...sessions.values()].filter((s) => WORKING.has(s.status))
  return (
    <div className="iprogress">
      <ProgressBar fraction={p.fraction} label="Overall progress" />
      <p className="muted" data-testid="progress-summary">
        {Math.round(p.fraction * 100)}% · {p.tasks_done} of {p.tasks_total} tasks done · {p.sessions_running} session
        {p.sessions_running === 1 ? '' : 's'} running
        {Object.entries(p.by_status)
          .filter(([k, n]) => n > 0 && k !== 'done')
          .map(([k, n]) => ` · ${n} ${label(k).toLowerCase()}`)
          .join('')}
        {o.idle ? ' · idle: waiting for a person' : ''}
      </p>
      {running.length > 0 && (
        <div className="running-now">
          <h3 className="h-small">Running now</h3>
          <ul className="running-list">
            {running.map((s) => (
              <RunningRow key={s.id} s={s} taskKey={p.sessions.find((x) => x.id === s.id)?.task_key ?? null} />
            ))}
          </ul>
        </div>
      )}
      <ol className="iplan" aria-label="Plan tasks">
        {p.tasks.map((t) => (
          <PlanTask key={t.key} taskId={o.task.id} t={t} sessions={sessions} />
        ))}
      </ol>
    </div>
  )
})

function RunningRow({ s, taskKey }: { s: WorkSession; taskKey: string | null }) {
  const now = useNow()
  return (
    <li>
      <span className="pulse" aria-hidden="true" /> <Link to={`/sessions/${s.id}`}>#{s.id} {s.name}</Link>{' '}
      <span className="muted small">
        {taskKey ? `task ${taskKey} · ` : ''}
        {label(s.status)} · {span(s.created_at, null, now)}
        {s.attempt > 1 ? ` · attempt ${s.attempt}` : ''}
      </span>
    </li>
  )
}

function PlanTask({ taskId, t, sessions }: { taskId: number; t: TaskProgress; sessions: Map<number, WorkSession> }) {
  const mine = t.session_ids.map((id) => sessions.get(id)).filter((s): s is WorkSession => !!s)
  const workers = mine.filter((s) => s.kind !== 'merge_conflict')
  const attempts = workers.reduce((a, s) => Math.max(a, s.attempt), 0)
  const live = mine.some((s) => WORKING.has(s.status))
  const first = mine[0]
  const last = mine.at(-1)
  // The body (sub-items, sessions, decisions) is built when first opened.
  const [opened, setOpened] = useState(false)
  return (
    <li className={`iplan-task iplan-${t.status}`} data-plan-key={t.key} data-status={t.status}>
      <details onToggle={(e) => e.currentTarget.open && setOpened(true)}>
        <summary>
          <span className="plan-key">{t.key}</span>
          <span className="iplan-title">{t.title}</span>
          <span className={`badge ist-${t.status}`}>{label(t.status)}</span>
          <span className="muted small iplan-meta">
            {t.sub_items_total > 0 ? `${t.sub_items_done}/${t.sub_items_total} · ` : ''}
            {attempts > 0 ? `${attempts} attempt${attempts === 1 ? '' : 's'}` : 'not started'}
            {first && last ? <> · <Took from={first.created_at} to={live ? null : last.updated_at} /></> : null}
          </span>
          <ProgressBar fraction={t.fraction} label={`Task ${t.key} progress`} />
        </summary>
        {opened && (
        <div className="iplan-body">
          {t.depends_on.length > 0 && <p className="small muted">Waits for {t.depends_on.join(', ')}</p>}
          {t.sub_items.length > 0 ? (
            <ul className="subitems">
              {t.sub_items.map((i) => (
                <li key={i.key} style={{ paddingLeft: `${(i.depth - 1) * 16}px` }} className={i.done ? 'done' : ''}>
                  <span aria-hidden="true">{i.done ? '☑' : '☐'}</span> <span className="plan-key">{i.key}</span> {i.title}
                  <span className="visually-hidden">{i.done ? ' (done)' : ' (not done)'}</span>
                </li>
              ))}
            </ul>
          ) : (
            <p className="small muted">No sub-items.</p>
          )}
          {mine.length > 0 && (
            <p className="small">
              Sessions:{' '}
              {mine.map((s, i) => (
                <span key={s.id}>
                  {i > 0 && ', '}
                  <Link to={`/sessions/${s.id}`}>#{s.id}</Link> <span className="muted">({label(s.status)})</span>
                </span>
              ))}
            </p>
          )}
          <TaskDecisions taskId={taskId} planKey={t.key} title={t.title} status={t.status} />
        </div>
        )}
      </details>
    </li>
  )
}

function Took({ from, to }: { from: string; to: string | null }) {
  return to ? <span>{span(from, to, 0)}</span> : <LiveTook from={from} />
}
function LiveTook({ from }: { from: string }) {
  const now = useNow()
  return <span>{span(from, null, now)}</span>
}
