// The session hierarchy: implementation sessions, the conflict fixers under the
// session whose merge they fix, spawned sessions under their parent. Each with its
// status, attempt, branch, elapsed time, sub-items, a link to its page, and the
// decisions that apply in its status.
import { memo } from 'react'
import { Link } from 'react-router'
import { label } from '../../shared/lib/format'
import { Empty } from '../../shared/ui/bits'
import { SessionDecisions } from './Decisions'
import { FINISHED, type SessionNode, type SessionProgress } from './types'
import { span, useNow } from './time'

const KIND: Record<string, string> = {
  planning: 'planning',
  implementation: 'implementation',
  merge_conflict: 'conflict fixer',
  spawned: 'spawned',
}

export const SessionTree = memo(function SessionTree(props: {
  taskId: number
  roots: SessionNode[]
  progress: SessionProgress[]
}) {
  const byId = new Map(props.progress.map((p) => [p.id, p]))
  if (props.roots.length === 0) return <Empty>No sessions yet.</Empty>
  return (
    <ul className="stree" aria-label="Sessions, children under their parent" data-testid="session-tree">
      {props.roots.map((n) => (
        <Node key={n.id} node={n} taskId={props.taskId} byId={byId} depth={1} />
      ))}
    </ul>
  )
})

function Node({
  node: s,
  taskId,
  byId,
  depth,
}: {
  node: SessionNode
  taskId: number
  byId: Map<number, SessionProgress>
  depth: number
}) {
  const p = byId.get(s.id)
  return (
    <li
      className={`snode snode-${s.status}`}
      data-depth={depth}
      data-session-id={s.id}
      data-status={s.status}
      data-parent-id={s.parent_id ?? ''}
    >
      <div className="snode-row">
        <span className={`sdot sdot-${s.status}`} aria-hidden="true" />
        <Link to={`/sessions/${s.id}`} className="snode-name">
          <span className="muted">#{s.id}</span> {s.name}
        </Link>
        <span className={`badge sst-${s.status}`}>{label(s.status)}</span>
        <span className="badge">{KIND[s.kind] ?? s.kind}</span>
        {p?.task_key && <span className="muted small">task {p.task_key}</span>}
        {s.attempt > 1 && <span className="muted small">attempt {s.attempt}</span>}
        {p && p.sub_items_total > 0 && (
          <span className="muted small">
            {p.sub_items_done}/{p.sub_items_total} items
          </span>
        )}
        {s.branch && (
          <code className="snode-branch small" title={s.branch}>
            {s.branch}
          </code>
        )}
        <Elapsed from={s.created_at} to={FINISHED.has(s.status) ? s.updated_at : null} live={!FINISHED.has(s.status)} />
        <SessionDecisions taskId={taskId} session={s} />
      </div>
      {s.failure_reason && <p className="snode-why small">{s.failure_reason}</p>}
      {s.children.length > 0 && (
        <ul className="stree-children" aria-label={`Under session ${s.id}`}>
          {s.children.map((c) => (
            <Node key={c.id} node={c} taskId={taskId} byId={byId} depth={depth + 1} />
          ))}
        </ul>
      )}
    </li>
  )
}

function Elapsed({ from, to, live }: { from: string; to: string | null; live: boolean }) {
  return live ? <LiveElapsed from={from} /> : <span className="muted small snode-time">{span(from, to, Date.now())}</span>
}

function LiveElapsed({ from }: { from: string }) {
  const now = useNow()
  return <span className="muted small snode-time">{span(from, null, now)}</span>
}

