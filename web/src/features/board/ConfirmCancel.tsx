import { Dialog } from '../../shared/ui/Dialog'
import { useTaskAction } from '../../shared/api/actions'
import type { SpecTask } from '../../shared/api/types'

export function ConfirmCancel({ task, onClose }: { task: SpecTask | null; onClose: () => void }) {
  return (
    <Dialog open={task !== null} title={task ? `Cancel task #${task.id}?` : 'Cancel task'} onClose={onClose}>
      {task && <Body task={task} onClose={onClose} />}
    </Dialog>
  )
}

function Body({ task, onClose }: { task: SpecTask; onClose: () => void }) {
  const action = useTaskAction(task.id)
  return (
    <>
      <p>
        <strong>{task.title}</strong> stops where it is: its agent work ends and it moves to Cancelled. Its branch{' '}
        <code>{task.branch}</code> is kept.
      </p>
      <div className="dialog-actions">
        <button type="button" className="btn" onClick={onClose}>
          Keep it
        </button>
        <button
          type="button"
          className="btn btn-danger"
          disabled={action.isPending}
          onClick={() => action.mutate('cancel', { onSuccess: onClose })}
        >
          Cancel the task
        </button>
      </div>
    </>
  )
}
