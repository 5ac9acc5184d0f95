// The task-wide control of a run: stop every session (the task's agent stops, its
// sessions are interrupted until it is restarted), after asking. Cancelling the
// task (nothing more runs or merges) is the task header's Cancel, which asks too.
import { useState } from 'react'
import { Dialog } from '../../shared/ui/Dialog'
import type { SpecTask } from '../../shared/api/types'
import { useAgentControl } from './api'

const LIVE = new Set(['implementation_queued', 'implementing', 'implementation_review'])

export function TaskControls({ task, running }: { task: SpecTask; running: number }) {
  const [stopping, setStopping] = useState(false)
  const control = useAgentControl(task.id)
  if (!LIVE.has(task.status)) return null
  return (
    <div className="task-controls" role="group" aria-label="Run controls">
      <button type="button" className="btn" onClick={() => setStopping(true)} disabled={control.isPending}>
        Stop all sessions
      </button>
      <Dialog open={stopping} title="Stop all sessions of this task?" onClose={() => setStopping(false)}>
        <p>
          The task's agent stops; its {running} running session{running === 1 ? ' is' : 's are'} interrupted and resume
          when the agent is restarted (Restart agent, below) or they are retried.
        </p>
        <div className="dialog-actions">
          <button type="button" className="btn" onClick={() => setStopping(false)}>
            Keep running
          </button>
          <button
            type="button"
            className="btn btn-danger"
            disabled={control.isPending}
            onClick={() => control.mutate('stop', { onSettled: () => setStopping(false) })}
          >
            Stop all sessions
          </button>
        </div>
      </Dialog>
    </div>
  )
}
