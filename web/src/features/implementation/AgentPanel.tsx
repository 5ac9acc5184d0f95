// The task's agent instance: its process (status, pid, uptime, restarts, last
// error), CPU and memory over time, its threads (one per session) and what each is
// doing; stop and restart; and the emergency stop of every agent of every task.
import { memo, useState } from 'react'
import { useQuery } from '@tanstack/react-query'
import { Link } from 'react-router'
import { label } from '../../shared/lib/format'
import { Dialog } from '../../shared/ui/Dialog'
import { Empty } from '../../shared/ui/bits'
import { coordinationQuery, samplesQuery, threadsQuery, useAgentControl, useStopAll } from './api'
import { Sparkline } from './Sparkline'
import { bytes, span, useNow } from './time'
import type { AgentInstance, WorkSession } from './types'

export const AgentPanel = memo(function AgentPanel({
  taskId,
  instance,
  sessions,
}: {
  taskId: number
  instance: AgentInstance | null | undefined
  sessions: Map<number, WorkSession>
}) {
  const control = useAgentControl(taskId)
  const threads = useQuery(threadsQuery(taskId))
  // The files a session changed are in its completion event (once merged).
  const coordination = useQuery(coordinationQuery(taskId))
  const files = new Map<number, string[]>()
  for (const e of coordination.data ?? []) {
    const f = (e.payload as { files?: unknown } | null)?.files
    if (e.kind === 'completion' && e.from_session_id != null && Array.isArray(f)) files.set(e.from_session_id, f.map(String))
  }
  const samples = useQuery({ ...samplesQuery(taskId), enabled: instance != null })
  const series = samples.data ?? []
  const i = instance ?? null
  const up = i != null && (i.status === 'ready' || i.status === 'starting')
  return (
    <div className="agent" data-testid="agent-panel" data-instance-status={i?.status ?? 'none'}>
      {i == null ? (
        <Empty>This task has not started an agent yet.</Empty>
      ) : (
        <>
          <dl className="agent-facts">
            <div>
              <dt>Status</dt>
              <dd>
                <span className={`badge ag-${i.status}`} data-testid="instance-status">
                  {label(i.status)}
                </span>
              </dd>
            </div>
            <div>
              <dt>Agent</dt>
              <dd>
                {i.profile}
                {i.agent_name ? ` (${i.agent_name}${i.agent_version ? ` ${i.agent_version}` : ''})` : ''}
              </dd>
            </div>
            <div>
              <dt>PID</dt>
              <dd>{i.pid ?? '–'}</dd>
            </div>
            <div>
              <dt>{up ? 'Uptime' : 'Stopped for'}</dt>
              <dd>
                <Since at={i.updated_at} />
              </dd>
            </div>
            <div>
              <dt>Restarts</dt>
              <dd>{i.restarts}</dd>
            </div>
          </dl>
          {i.held_at && (
            <p className="note note-warn small" data-testid="instance-held">
              <strong>Held</strong> since {new Date(i.held_at).toLocaleTimeString()}: a person stopped it, so nothing
              starts it again (its sessions wait, interrupted) until Restart agent.
            </p>
          )}
          {i.last_error && (
            <p className="note note-warn small">
              <strong>Last stop:</strong> {i.last_error}
            </p>
          )}
          <div className="agent-charts">
            <Sparkline
              label="CPU"
              values={series.map((s) => s.cpu_percent)}
              format={(v) => `${v.toFixed(0)}%`}
              floorMax={100}
            />
            <Sparkline label="Memory" values={series.map((s) => s.rss_bytes)} format={bytes} />
          </div>
          {series.length === 0 && i.cpu_percent != null && (
            <p className="muted small">
              Latest sample: {i.cpu_percent.toFixed(0)}% CPU, {bytes(i.rss_bytes ?? 0)}.
            </p>
          )}
        </>
      )}
      <div className="row-actions agent-actions">
        <button
          type="button"
          className="btn"
          disabled={control.isPending || !up}
          onClick={() => control.mutate('stop')}
          aria-label="Stop this task's agent"
        >
          Stop agent
        </button>
        <button type="button" className="btn" disabled={control.isPending} onClick={() => control.mutate('restart')}>
          {i == null ? 'Start agent' : 'Restart agent'}
        </button>
        <StopAll />
      </div>
      <h3 className="h-small">Threads</h3>
      {threads.data && threads.data.length > 0 ? (
        <ul className="threads" aria-label="Agent threads">
          {threads.data.map((t) => {
            const s = sessions.get(t.work_session_id)
            return (
              <li key={t.id} data-thread-id={t.id} data-status={t.status}>
                <span className={`badge th-${t.status}`}>{label(t.status)}</span>{' '}
                <Link to={`/sessions/${t.work_session_id}`}>
                  session #{t.work_session_id}
                  {s ? ` ${s.name}` : ''}
                </Link>
                <span className="muted small"> · {doing(t.status, s)}</span>
                <ThreadFiles files={files.get(t.work_session_id)} />
              </li>
            )
          })}
        </ul>
      ) : (
        <Empty>No threads yet.</Empty>
      )}
      <p className="muted small">
        Files changed are known once a thread's session is merged (its merge commit); while it works, its page shows
        the files its tool calls touch.
      </p>
    </div>
  )
})

function ThreadFiles({ files }: { files: string[] | undefined }) {
  if (!files) return null
  if (files.length === 0) return <div className="muted small thread-files">merged, no files changed</div>
  const shown = files.slice(0, 6)
  return (
    <div className="small thread-files" aria-label={`Files changed: ${files.join(', ')}`}>
      {shown.map((f) => (
        <code key={f}>{f}</code>
      ))}
      {files.length > shown.length && <span className="muted"> +{files.length - shown.length} more</span>}
    </div>
  )
}

function doing(thread: string, s: WorkSession | undefined): string {
  if (thread === 'prompting') return s ? `working (${label(s.status).toLowerCase()})` : 'working on a turn'
  if (thread === 'idle') return s ? `between turns; session ${label(s.status).toLowerCase()}` : 'between turns'
  if (thread === 'opening') return 'opening'
  if (thread === 'interrupted') return 'interrupted: resumes when the agent runs again'
  return 'closed'
}

function Since({ at }: { at: string }) {
  const now = useNow()
  return <span>{span(at, null, now)}</span>
}

/** Every agent of every task, in an emergency: asks first. */
export function StopAll() {
  const [open, setOpen] = useState(false)
  const stop = useStopAll()
  return (
    <>
      <button type="button" className="btn btn-danger" onClick={() => setOpen(true)}>
        Stop all agents…
      </button>
      <Dialog open={open} title="Stop every agent?" onClose={() => setOpen(false)}>
        <p>
          This stops the agent of <strong>every task</strong> on this server, now. Their sessions are interrupted and
          stay so until their agent is restarted or they are retried.
        </p>
        <div className="dialog-actions">
          <button type="button" className="btn" onClick={() => setOpen(false)}>
            Keep them running
          </button>
          <button
            type="button"
            className="btn btn-danger"
            disabled={stop.isPending}
            onClick={() => stop.mutate(undefined, { onSuccess: () => setOpen(false) })}
          >
            Stop all agents
          </button>
        </div>
      </Dialog>
    </>
  )
}
