import { useState, type FormEvent } from 'react'
import { useNavigate } from 'react-router'
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { Link } from 'react-router'
import { api, errorMessage, unwrap } from '../../shared/api/client'
import { projectsQuery, upsertTask } from '../../shared/api/queries'
import { AGENT_PROFILES, PRIORITIES, TASK_TYPES, type Priority, type TaskType } from '../../shared/api/types'
import { Dialog } from '../../shared/ui/Dialog'
import { toast } from '../../shared/ui/toast'

export function CreateTaskDialog({ open, onClose }: { open: boolean; onClose: () => void }) {
  return (
    <Dialog open={open} title="New task" onClose={onClose} wide>
      <CreateForm onClose={onClose} />
    </Dialog>
  )
}

function CreateForm({ onClose }: { onClose: () => void }) {
  const qc = useQueryClient()
  const navigate = useNavigate()
  const projects = useQuery(projectsQuery)
  const [projectId, setProjectId] = useState('')
  const [title, setTitle] = useState('')
  const [prompt, setPrompt] = useState('')
  const [priority, setPriority] = useState<Priority>('medium')
  const [type, setType] = useState<TaskType>('feature')
  const [profile, setProfile] = useState('')
  const [parallel, setParallel] = useState('')
  const [startNow, setStartNow] = useState(false)
  const [error, setError] = useState<string | null>(null)

  const list = projects.data ?? []
  const chosen = projectId || (list.length === 1 ? String(list[0]!.id) : '')

  const create = useMutation({
    mutationFn: async () => {
      const task = await unwrap(
        api.POST('/api/v1/spec-tasks', {
          body: {
            prompt,
            title: title.trim() || null,
            priority,
            type,
            project_id: chosen ? Number(chosen) : null,
            agent_profile: profile.trim() || null,
            max_parallel_sessions: parallel ? Number(parallel) : null,
          },
        }),
      )
      upsertTask(qc, task)
      if (startNow) {
        const started = await unwrap(
          api.POST('/api/v1/spec-tasks/{id}/{action}', { params: { path: { id: task.id, action: 'start-planning' } } }),
        )
        upsertTask(qc, started)
        return started
      }
      return task
    },
    onSuccess: (task) => {
      toast('ok', `Task #${task.id} created`)
      onClose()
      navigate(`/tasks/${task.id}`)
    },
    onError: (err) => setError(errorMessage(err)),
  })

  const submit = (e: FormEvent) => {
    e.preventDefault()
    setError(null)
    if (!prompt.trim()) {
      setError('Describe the change in the prompt.')
      return
    }
    if (list.length > 1 && !chosen) {
      setError('Choose a project.')
      return
    }
    create.mutate()
  }

  if (projects.isSuccess && list.length === 0) {
    return (
      <p>
        No project is registered yet. <Link to="/projects" onClick={onClose}>Register a repository</Link> first.
      </p>
    )
  }

  return (
    <form className="form grid-form" onSubmit={submit}>
      <label htmlFor="new-project">Project</label>
      <select id="new-project" value={chosen} onChange={(e) => setProjectId(e.target.value)} required>
        {list.length !== 1 && <option value="">Choose…</option>}
        {list.map((p) => (
          <option key={p.id} value={p.id}>
            {p.name}
          </option>
        ))}
      </select>
      <label htmlFor="new-title">Title</label>
      <input
        id="new-title"
        value={title}
        maxLength={200}
        placeholder="Defaults to the prompt's first line"
        onChange={(e) => setTitle(e.target.value)}
      />
      <label htmlFor="new-prompt">Prompt</label>
      <textarea
        id="new-prompt"
        value={prompt}
        rows={6}
        required
        autoFocus
        placeholder="What should change? The planning agent writes the spec from this."
        onChange={(e) => setPrompt(e.target.value)}
      />
      <label htmlFor="new-priority">Priority</label>
      <select id="new-priority" value={priority} onChange={(e) => setPriority(e.target.value as Priority)}>
        {PRIORITIES.map((p) => (
          <option key={p} value={p}>
            {p}
          </option>
        ))}
      </select>
      <label htmlFor="new-type">Type</label>
      <select id="new-type" value={type} onChange={(e) => setType(e.target.value as TaskType)}>
        {TASK_TYPES.map((t) => (
          <option key={t} value={t}>
            {t}
          </option>
        ))}
      </select>
      <label htmlFor="new-profile">Agent profile</label>
      <input
        id="new-profile"
        list="agent-profiles"
        value={profile}
        placeholder="The server's default"
        onChange={(e) => setProfile(e.target.value)}
      />
      <datalist id="agent-profiles">
        {AGENT_PROFILES.map((p) => (
          <option key={p} value={p} />
        ))}
      </datalist>
      <label htmlFor="new-parallel">Max parallel sessions</label>
      <input
        id="new-parallel"
        type="number"
        min={1}
        max={64}
        value={parallel}
        placeholder="The project's setting"
        onChange={(e) => setParallel(e.target.value)}
      />
      <span />
      <label className="check">
        <input type="checkbox" checked={startNow} onChange={(e) => setStartNow(e.target.checked)} /> Start planning
        right away
      </label>
      {error && (
        <p className="note note-error span-2" role="alert">
          {error}
        </p>
      )}
      <div className="dialog-actions span-2">
        <button type="button" className="btn" onClick={onClose}>
          Close
        </button>
        <button type="submit" className="btn btn-primary" disabled={create.isPending}>
          {create.isPending ? 'Creating…' : 'Create task'}
        </button>
      </div>
    </form>
  )
}
