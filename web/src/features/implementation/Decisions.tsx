// Retry / skip / cancel for a session or a plan task, offered only in the statuses
// the server allows them (it still decides). Skip and cancel cannot be undone: they
// ask first.
import { useState } from 'react'
import { Dialog } from '../../shared/ui/Dialog'
import { usePlanTaskDecision, useSessionDecision } from './api'
import type { Decision, ImplStatus, WorkSession, WorkSessionStatus } from './types'

const SKIPPABLE: ReadonlySet<WorkSessionStatus> = new Set(['pending', 'blocked', 'interrupted', 'conflicted', 'failed'])
const TERMINAL: ReadonlySet<WorkSessionStatus> = new Set(['completed', 'failed', 'skipped', 'cancelled'])

/** The decisions the server allows for a session in its status. */
export function sessionDecisions(s: Pick<WorkSession, 'status' | 'kind' | 'implementation_task_id'>): Decision[] {
  if (s.kind === 'merge_conflict' || s.kind === 'planning' || s.implementation_task_id == null) return []
  const out: Decision[] = []
  if (s.status === 'failed' || s.status === 'conflicted') out.push('retry')
  if (SKIPPABLE.has(s.status)) out.push('skip')
  if (!TERMINAL.has(s.status)) out.push('cancel')
  return out
}

/** The decisions the server allows for a plan task in its status. */
export function taskDecisions(status: ImplStatus): Decision[] {
  switch (status) {
    case 'failed':
      return ['retry', 'skip', 'cancel']
    case 'pending':
    case 'in_progress':
    case 'blocked':
      return ['skip', 'cancel']
    default:
      return []
  }
}

const WHAT: Record<Decision, string> = { retry: 'Retry', skip: 'Skip', cancel: 'Cancel' }

const CONSEQUENCE: Record<'skip' | 'cancel', string> = {
  skip: 'Its task is marked done with nothing merged; the tasks waiting for it go ahead. This cannot be undone.',
  cancel: 'Its turn stops and its task is cancelled; its branch and worktree stay. This cannot be undone.',
}

export function SessionDecisions({ taskId, session }: { taskId: number; session: WorkSession }) {
  const m = useSessionDecision(taskId)
  const options = sessionDecisions(session)
  const [confirm, setConfirm] = useState<Decision | null>(null)
  if (options.length === 0) return null
  const go = (d: Decision) => m.mutate({ session: session.id, decision: d }, { onSettled: () => setConfirm(null) })
  return (
    <span className="decisions">
      {options.map((d) => (
        <button
          key={d}
          type="button"
          className={d === 'retry' ? 'btn btn-sm btn-primary' : 'btn btn-sm'}
          aria-label={`${WHAT[d]} session ${session.id}`}
          disabled={m.isPending}
          onClick={() => (d === 'retry' ? go(d) : setConfirm(d))}
        >
          {WHAT[d]}
        </button>
      ))}
      <Confirm
        open={confirm}
        title={confirm ? `${WHAT[confirm]} session #${session.id}?` : ''}
        subject={session.name}
        pending={m.isPending}
        onYes={() => confirm && go(confirm)}
        onClose={() => setConfirm(null)}
      />
    </span>
  )
}

export function TaskDecisions({ taskId, planKey, title, status }: { taskId: number; planKey: string; title: string; status: ImplStatus }) {
  const m = usePlanTaskDecision(taskId)
  const options = taskDecisions(status)
  const [confirm, setConfirm] = useState<Decision | null>(null)
  if (options.length === 0) return null
  const go = (d: Decision) => m.mutate({ key: planKey, decision: d }, { onSettled: () => setConfirm(null) })
  return (
    <span className="decisions">
      {options.map((d) => (
        <button
          key={d}
          type="button"
          className={d === 'retry' ? 'btn btn-sm btn-primary' : 'btn btn-sm'}
          aria-label={`${WHAT[d]} task ${planKey}`}
          disabled={m.isPending}
          onClick={() => (d === 'retry' ? go(d) : setConfirm(d))}
        >
          {WHAT[d]}
        </button>
      ))}
      <Confirm
        open={confirm}
        title={confirm ? `${WHAT[confirm]} task ${planKey}?` : ''}
        subject={title}
        pending={m.isPending}
        onYes={() => confirm && go(confirm)}
        onClose={() => setConfirm(null)}
      />
    </span>
  )
}

function Confirm(props: {
  open: Decision | null
  title: string
  subject: string
  pending: boolean
  onYes: () => void
  onClose: () => void
}) {
  const d = props.open
  return (
    <Dialog open={d !== null} title={props.title} onClose={props.onClose}>
      {d && d !== 'retry' && (
        <>
          <p>
            <strong>{props.subject}</strong>: {CONSEQUENCE[d]}
          </p>
          <div className="dialog-actions">
            <button type="button" className="btn" onClick={props.onClose}>
              Keep it
            </button>
            <button type="button" className="btn btn-danger" disabled={props.pending} onClick={props.onYes}>
              {WHAT[d]}
            </button>
          </div>
        </>
      )}
    </Dialog>
  )
}
