// Beside the transcript: related sessions (parent, children, the sessions of the
// tasks it depends on and of those that depend on it), its commits, files and
// verification, and its coordination events.
import { memo } from 'react'
import { Link } from 'react-router'
import { useQuery } from '@tanstack/react-query'
import type { Schemas } from '../../shared/api/client'
import type { Overview, WorkSession } from '../../shared/api/types'
import { ago, dateTime, label } from '../../shared/lib/format'
import { Empty } from '../../shared/ui/bits'
import { changesQuery } from './api'

type CoordinationEvent = Schemas['CoordinationEvent']

/** Every session of the task, from the overview's tree. */
export function flatSessions(o: Overview | undefined): WorkSession[] {
  const out: WorkSession[] = []
  const walk = (nodes: Schemas['SessionNode'][]) => {
    for (const n of nodes) {
      const { children, ...s } = n
      out.push(s)
      walk(children)
    }
  }
  walk(o?.sessions ?? [])
  return out.sort((a, b) => a.id - b.id)
}

interface Related {
  parent: WorkSession[]
  children: WorkSession[]
  dependencies: WorkSession[]
  dependents: WorkSession[]
}

export function related(s: WorkSession, o: Overview | undefined): Related {
  const all = flatSessions(o)
  const byId = new Map(all.map((x) => [x.id, x]))
  const tasks = o?.progress.tasks ?? []
  const mine = tasks.find((t) => t.session_ids.includes(s.id))
  const latest = (keys: string[]) =>
    keys
      .map((k) => tasks.find((t) => t.key === k)?.session_ids.at(-1))
      .map((id) => (id == null ? undefined : byId.get(id)))
      .filter((x): x is WorkSession => x != null && x.id !== s.id)
  return {
    parent: s.parent_id != null && byId.has(s.parent_id) ? [byId.get(s.parent_id)!] : [],
    children: all.filter((x) => x.parent_id === s.id),
    dependencies: mine ? latest(mine.depends_on) : [],
    dependents: mine ? latest(tasks.filter((t) => t.depends_on.includes(mine.key)).map((t) => t.key)) : [],
  }
}

export const RelatedPanel = memo(function RelatedPanel({ rel }: { rel: Related }) {
  const groups: [string, WorkSession[]][] = [
    ['Parent', rel.parent],
    ['Children', rel.children],
    ['Depends on', rel.dependencies],
    ['Depended on by', rel.dependents],
  ]
  const any = groups.some(([, xs]) => xs.length > 0)
  return (
    <section className="panel side-panel" aria-labelledby="rel-h">
      <h2 id="rel-h">Related sessions</h2>
      {!any && <Empty>None: no parent, children or dependencies.</Empty>}
      <dl className="rel-list">
        {groups
          .filter(([, xs]) => xs.length > 0)
          .map(([name, xs]) => (
            <div key={name}>
              <dt>{name}</dt>
              {xs.map((x) => (
                <dd key={x.id}>
                  <Link to={`/sessions/${x.id}`}>
                    #{x.id} {x.name}
                  </Link>{' '}
                  <span className={`badge ws-${x.status}`}>{label(x.status)}</span>
                </dd>
              ))}
            </div>
          ))}
      </dl>
    </section>
  )
})

export const ChangesPanel = memo(function ChangesPanel({ sessionId }: { sessionId: number }) {
  const changes = useQuery(changesQuery(sessionId))
  const c = changes.data
  return (
    <section className="panel side-panel" aria-labelledby="changes-h" data-testid="changes">
      <h2 id="changes-h">Changes</h2>
      {!c ? (
        <p className="muted small">{changes.isError ? 'Could not load the changes.' : 'Loading…'}</p>
      ) : (
        <>
          <h3 className="side-h3">Commits ({c.commits.length})</h3>
          {c.commits.length === 0 ? (
            <Empty>No commits yet.</Empty>
          ) : (
            <ul className="commit-list">
              {c.commits.map((k) => (
                <li key={k.sha}>
                  <code title={k.sha}>{k.sha.slice(0, 8)}</code> {k.subject}
                </li>
              ))}
            </ul>
          )}
          <h3 className="side-h3">Files changed ({c.files.length})</h3>
          {c.files.length === 0 ? (
            <Empty>No files changed.</Empty>
          ) : (
            <ul className="file-list">
              {c.files.map((f) => (
                <li key={f}>
                  <code>{f}</code>
                </li>
              ))}
            </ul>
          )}
          <h3 className="side-h3">Verification</h3>
          {!c.verification ? (
            <Empty>Not run (no verification command, or not yet).</Empty>
          ) : (
            <details className="verify" open={!c.verification.passed}>
              <summary>
                <span className={`badge ${c.verification.passed ? 'verdict-ok' : 'verdict-bad'}`}>
                  {c.verification.passed ? 'passed' : 'failed'}
                </span>{' '}
                <code>{c.verification.command}</code>{' '}
                <span className="muted small" title={dateTime(c.verification.at)}>
                  {ago(c.verification.at)}
                </span>
              </summary>
              <pre className="te-code">{c.verification.output || '(no output)'}</pre>
            </details>
          )}
        </>
      )}
    </section>
  )
})

export const CoordinationPanel = memo(function CoordinationPanel({ sessionId, events }: { sessionId: number; events: CoordinationEvent[] }) {
  const mine = events.filter((e) => e.from_session_id === sessionId || e.to_session_id === sessionId || e.to_session_id == null)
  const who = (id: number | null | undefined, none: string) =>
    id == null ? none : id === sessionId ? 'this session' : <Link to={`/sessions/${id}`}>session {id}</Link>
  return (
    <section className="panel side-panel" aria-labelledby="coord-h" data-testid="coordination">
      <h2 id="coord-h">Coordination ({mine.length})</h2>
      {mine.length === 0 ? (
        <Empty>No coordination events to or from this session.</Empty>
      ) : (
        <ol className="coord-list">
          {mine.map((e) => (
            <li key={e.id} className={`coord coord-${e.kind}`}>
              <div className="coord-head">
                <span className="badge">{label(e.kind)}</span>{' '}
                <span className="small">
                  {who(e.from_session_id, 'a person')} → {who(e.to_session_id, 'everyone')}
                </span>{' '}
                <span className="muted small" title={dateTime(e.created_at)}>
                  {ago(e.created_at)}
                </span>
                <span className={`small ${e.acknowledged_at ? 'muted' : 'coord-unread'}`}>
                  {e.acknowledged_at ? ' · acknowledged' : ' · not acknowledged'}
                </span>
              </div>
              <p className="coord-msg">{e.message}</p>
            </li>
          ))}
        </ol>
      )}
    </section>
  )
})
