import { useMemo, useState } from 'react'
import { useQuery } from '@tanstack/react-query'
import { overviewQuery } from '../../shared/api/queries'
import type { SpecTask } from '../../shared/api/types'
import { Empty, ErrorNote, Loading } from '../../shared/ui/bits'
import { label } from '../../shared/lib/format'
import { ProgressPanel } from '../implementation/ProgressPanel'
import { TaskGraph } from '../implementation/TaskGraph'
import { SessionTree } from '../implementation/SessionTree'
import { CoordinationTimeline } from '../implementation/CoordinationTimeline'
import { SpawnForm } from '../implementation/SpawnForm'
import { AgentPanel } from '../implementation/AgentPanel'
import { TaskControls } from '../implementation/TaskControls'
import type { SessionNode, WorkSession } from '../implementation/types'
import '../implementation/implementation.css'

/** Every session of the tree, by id. */
function flatten(roots: SessionNode[]): Map<number, WorkSession> {
  const out = new Map<number, WorkSession>()
  const walk = (n: SessionNode) => {
    out.set(n.id, n)
    n.children.forEach(walk)
  }
  roots.forEach(walk)
  return out
}

/**
 * The implementation of a task, from one overview (kept fresh by the event stream):
 * progress, the task graph, the session tree, the agent instance, the coordination
 * timeline, the spawn form and the run's controls.
 */
export function ImplementationTab({ task }: { task: SpecTask }) {
  const overview = useQuery(overviewQuery(task.id))
  const o = overview.data
  const sessions = useMemo(() => flatten(o?.sessions ?? []), [o?.sessions])
  // The spawn form is built when first opened.
  const [spawnOpened, setSpawnOpened] = useState(false)
  if (overview.isError) return <ErrorNote error={overview.error} />
  if (!o) return <Loading what="progress" />
  const p = o.progress
  return (
    <div className="impl" data-testid="implementation">
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
        <div className="panel-head">
          <h2 id="progress-h">Progress</h2>
          <TaskControls task={task} running={p.sessions_running} />
        </div>
        {p.tasks_total === 0 ? (
          <Empty>No plan yet: the approved spec's tasks.md becomes the plan.</Empty>
        ) : (
          <ProgressPanel overview={o} sessions={sessions} />
        )}
      </section>
      {o.graph.nodes.length > 0 && (
        <section className="panel" aria-labelledby="graph-h">
          <h2 id="graph-h">Task graph</h2>
          <TaskGraph graph={o.graph} tasks={p.tasks} />
        </section>
      )}
      <div className="impl-cols impl-later">
        <section className="panel" aria-labelledby="sessions-h">
          <h2 id="sessions-h">Sessions</h2>
          <SessionTree taskId={task.id} roots={o.sessions} progress={p.sessions} />
        </section>
        <section className="panel" aria-labelledby="agent-h">
          <h2 id="agent-h">Agent instance</h2>
          <AgentPanel taskId={task.id} instance={o.instance} sessions={sessions} />
        </section>
      </div>
      <section className="panel impl-later" aria-labelledby="coord-h">
        <h2 id="coord-h">Coordination</h2>
        <CoordinationTimeline taskId={task.id} sessions={sessions} />
      </section>
      <section className="panel" aria-labelledby="spawn-h">
        <details className="spawn" onToggle={(e) => e.currentTarget.open && setSpawnOpened(true)}>
          <summary>
            <h2 id="spawn-h">Spawn a session</h2>
          </summary>
          {spawnOpened && (
            <SpawnForm
              taskId={task.id}
              implementing={task.status === 'implementing'}
              sessions={[...sessions.values()]}
              tasks={p.tasks}
            />
          )}
        </details>
      </section>
    </div>
  )
}
