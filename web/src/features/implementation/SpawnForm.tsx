// Spawn a session into the running task: name, prompt, parent, and the tasks or
// sessions it waits for. Checked here the way the API checks (name and prompt not
// blank; the task must be implementing); what the server still refuses (a 404 for
// a dependency or parent, a 409, a 422) shows under the form in its own words.
import { useState, type FormEvent } from 'react'
import { errorMessage } from '../../shared/api/client'
import { useSpawn } from './api'
import type { TaskProgress, WorkSession } from './types'

export function SpawnForm(props: {
  taskId: number
  implementing: boolean
  sessions: WorkSession[]
  tasks: TaskProgress[]
  onSpawned?: (s: WorkSession) => void
}) {
  const spawn = useSpawn(props.taskId)
  const [name, setName] = useState('')
  const [prompt, setPrompt] = useState('')
  const [parent, setParent] = useState('')
  const [deps, setDeps] = useState<string[]>([])
  const [errors, setErrors] = useState<{ name?: string; prompt?: string; server?: string }>({})

  const toggle = (d: string) => setDeps((xs) => (xs.includes(d) ? xs.filter((x) => x !== d) : [...xs, d]))
  const submit = (e: FormEvent) => {
    e.preventDefault()
    const errs: typeof errors = {}
    if (!name.trim()) errs.name = 'name: must not be blank'
    if (!prompt.trim()) errs.prompt = 'prompt: must not be blank'
    setErrors(errs)
    if (errs.name || errs.prompt) return
    spawn.mutate(
      { name: name.trim(), prompt, parent_id: parent ? Number(parent) : null, depends_on: deps },
      {
        onSuccess: (s) => {
          setName('')
          setPrompt('')
          setDeps([])
          setErrors({})
          props.onSpawned?.(s)
        },
        onError: (err) => setErrors({ server: errorMessage(err) }),
      },
    )
  }
  const workers = props.sessions.filter((s) => s.kind !== 'planning')
  return (
    <form className="spawn-form" onSubmit={submit} noValidate aria-label="Spawn a session">
      {!props.implementing && (
        <p className="note note-warn small">Sessions are spawned into a task that is implementing; this one is not.</p>
      )}
      <div className="spawn-grid">
        <label htmlFor="spawn-name">Name</label>
        <div>
          <input
            id="spawn-name"
            value={name}
            onChange={(e) => setName(e.target.value)}
            aria-invalid={!!errors.name}
            aria-describedby={errors.name ? 'spawn-name-err' : undefined}
            placeholder="e.g. Add API docs"
          />
          {errors.name && (
            <p id="spawn-name-err" className="field-error">
              {errors.name}
            </p>
          )}
        </div>
        <label htmlFor="spawn-prompt">Prompt</label>
        <div>
          <textarea
            id="spawn-prompt"
            rows={3}
            value={prompt}
            onChange={(e) => setPrompt(e.target.value)}
            aria-invalid={!!errors.prompt}
            aria-describedby={errors.prompt ? 'spawn-prompt-err' : undefined}
            placeholder="What the session should do"
          />
          {errors.prompt && (
            <p id="spawn-prompt-err" className="field-error">
              {errors.prompt}
            </p>
          )}
        </div>
        <label htmlFor="spawn-parent">Parent</label>
        <select id="spawn-parent" value={parent} onChange={(e) => setParent(e.target.value)}>
          <option value="">None (top level)</option>
          {workers.map((s) => (
            <option key={s.id} value={s.id}>
              #{s.id} {s.name}
            </option>
          ))}
        </select>
        <span className="spawn-label" id="spawn-deps-label">
          Waits for
        </span>
        <div className="spawn-deps" role="group" aria-labelledby="spawn-deps-label">
          {props.tasks.map((t) => (
            <label key={t.key} className="check small">
              <input type="checkbox" checked={deps.includes(t.key)} onChange={() => toggle(t.key)} />
              task {t.key} <span className="muted">{t.title}</span>
            </label>
          ))}
          {workers
            .filter((s) => s.implementation_task_id != null)
            .map((s) => {
              const d = `session:${s.id}`
              return (
                <label key={d} className="check small">
                  <input type="checkbox" checked={deps.includes(d)} onChange={() => toggle(d)} />
                  session #{s.id} <span className="muted">{s.name}</span>
                </label>
              )
            })}
        </div>
      </div>
      <p className="muted small">
        It runs like a plan task (own worktree, own thread, the merge queue) with the task's agent profile, once what
        it waits for is done.
      </p>
      {errors.server && (
        <p className="note note-error small" role="alert" data-testid="spawn-error">
          {errors.server}
        </p>
      )}
      <div className="row-actions">
        <button type="submit" className="btn btn-primary" disabled={spawn.isPending}>
          Spawn session
        </button>
      </div>
    </form>
  )
}
