import { useQuery } from '@tanstack/react-query'
import { overviewQuery } from '../../shared/api/queries'
import type { SpecTask } from '../../shared/api/types'
import { Empty, ErrorNote, Loading, ProgressBar } from '../../shared/ui/bits'
import { label } from '../../shared/lib/format'

/** Part 1: progress and what needs a person; part 2 adds sessions, graph and agent. */
export function ImplementationTab({ task }: { task: SpecTask }) {
  const overview = useQuery(overviewQuery(task.id))
  if (overview.isError) return <ErrorNote error={overview.error} />
  if (!overview.data) return <Loading what="progress" />
  const o = overview.data
  const p = o.progress
  return (
    <div className="impl">
      {o.needs_person.length > 0 && (
        <section className="panel" aria-labelledby="needs-h">
          <h2 id="needs-h">Needs you</h2>
          <ul className="needs-list">
            {o.needs_person.map((n, i) => (
              <li key={i} className={`need need-${n.kind}`}>
                <strong>{label(n.kind)}</strong>
                {n.task_key ? ` · task ${n.task_key}` : ''}
                {n.session_id ? ` · session ${n.session_id}` : ''}: {n.message}
              </li>
            ))}
          </ul>
        </section>
      )}
      <section className="panel" aria-labelledby="progress-h">
        <h2 id="progress-h">Progress</h2>
        {p.tasks_total === 0 ? (
          <Empty>No plan yet: the approved spec's tasks.md becomes the plan.</Empty>
        ) : (
          <>
            <ProgressBar fraction={p.fraction} label="Overall progress" />
            <p className="muted">
              {Math.round(p.fraction * 100)}% · {p.tasks_done} of {p.tasks_total} tasks done · {p.sessions_running} sessions
              running{o.idle ? ' · idle: waiting for a person' : ''}
            </p>
            <ol className="plan">
              {p.tasks.map((t) => (
                <li key={t.key} className={`plan-task plan-${t.status}`}>
                  <span className="plan-key">{t.key}</span>
                  <span className="plan-title">{t.title}</span>
                  <span className={`badge st-${t.status}`}>{label(t.status)}</span>
                  <ProgressBar fraction={t.fraction} label={`Task ${t.key} progress`} />
                </li>
              ))}
            </ol>
          </>
        )}
      </section>
      <p className="muted small">Sessions, the task graph, the agent instance and transcripts come in part 2 of the dashboard.</p>
    </div>
  )
}
