import { useState, type FormEvent } from 'react'
import { Link, useParams } from 'react-router'
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { api, errorMessage, unwrap } from '../../shared/api/client'
import { keys, projectQuery } from '../../shared/api/queries'
import type { Project, ProjectSettingsPatch } from '../../shared/api/types'
import { ErrorNote, Loading } from '../../shared/ui/bits'
import { toast } from '../../shared/ui/toast'

export function ProjectPage() {
  const id = Number(useParams().id)
  const project = useQuery(projectQuery(id))
  if (project.isError) return <section className="page"><ErrorNote error={project.error} title={`Project ${id}`} /></section>
  if (!project.data) return <section className="page"><Loading what="the project" /></section>
  return <Settings key={project.data.updated_at} project={project.data} />
}

type Field =
  | { key: keyof ProjectSettingsPatch; label: string; kind: 'text'; help?: string; optional?: boolean }
  | { key: keyof ProjectSettingsPatch; label: string; kind: 'number'; help?: string; optional?: boolean; min?: number; max?: number }
  | { key: keyof ProjectSettingsPatch; label: string; kind: 'select'; options: string[]; help?: string }
  | { key: keyof ProjectSettingsPatch; label: string; kind: 'bool'; help?: string }

const FIELDS: Field[] = [
  { key: 'name', label: 'Name', kind: 'text' },
  { key: 'base_branch', label: 'Base branch', kind: 'text', help: 'Task branches are cut from it.' },
  { key: 'spec_folder', label: 'Spec folder', kind: 'text', help: 'Where specs live in the repository.' },
  { key: 'verification_command', label: 'Verification command', kind: 'text', optional: true, help: 'Runs in a session’s worktree before its work is merged; empty for none.' },
  { key: 'planning_wip_limit', label: 'Planning WIP limit', kind: 'number', optional: true, min: 1, help: 'At most this many tasks plan at once; empty for no limit.' },
  { key: 'implementation_wip_limit', label: 'Implementation WIP limit', kind: 'number', optional: true, min: 1, help: 'At most this many tasks implement at once; empty for no limit.' },
  { key: 'max_parallel_sessions', label: 'Max parallel sessions', kind: 'number', min: 1, max: 64, help: 'Per task, unless the task says otherwise.' },
  { key: 'permission_policy', label: 'Permission policy', kind: 'select', options: ['auto', 'ask', 'deny'], help: 'auto: allow every edit and command (the sandbox confines them); ask: wait for a person; deny.' },
  { key: 'sandbox', label: 'Agent sandbox', kind: 'select', options: ['required', 'best_effort', 'off'], help: 'required: agents start only confined by the kernel; best_effort: unconfined, with a warning, where it cannot; off.' },
  { key: 'conflict_policy', label: 'Conflict policy', kind: 'select', options: ['fix', 'wait'], help: 'fix: a conflict-fixing session; wait: for a person.' },
  { key: 'max_attempts', label: 'Max attempts', kind: 'number', min: 1, help: 'Attempts a session gets after agent crashes.' },
  { key: 'empty_session', label: 'Empty session', kind: 'select', options: ['done', 'review'], help: 'A session that changed nothing: done, or fails for a person to review.' },
  { key: 'review_implementation', label: 'Review implementation', kind: 'bool', help: 'A finished plan waits in implementation review (else goes to done).' },
  { key: 'turn_timeout_secs', label: 'Turn timeout (s)', kind: 'number', min: 1, help: 'A longer turn is cancelled and counts as a failed attempt.' },
  { key: 'verify_timeout_secs', label: 'Verification timeout (s)', kind: 'number', min: 1 },
]

function initial(p: Project): Record<string, string> {
  const out: Record<string, string> = {}
  for (const f of FIELDS) {
    const v = (p as unknown as Record<string, unknown>)[f.key]
    out[f.key] = v == null ? '' : String(v)
  }
  return out
}

function Settings({ project }: { project: Project }) {
  const qc = useQueryClient()
  const start = initial(project)
  const [values, setValues] = useState(start)
  const [error, setError] = useState<string | null>(null)
  const changed = FIELDS.filter((f) => values[f.key] !== start[f.key])

  const save = useMutation({
    mutationFn: () => {
      const patch: Record<string, unknown> = {}
      for (const f of changed) {
        const raw = values[f.key] ?? ''
        if (f.kind === 'number') patch[f.key] = raw === '' ? null : Number(raw)
        else if (f.kind === 'bool') patch[f.key] = raw === 'true'
        else if (f.kind === 'text' && f.optional) patch[f.key] = raw.trim() === '' ? null : raw
        else patch[f.key] = raw
      }
      return unwrap(api.PATCH('/api/v1/projects/{id}', { params: { path: { id: project.id } }, body: patch as ProjectSettingsPatch }))
    },
    onSuccess: (p) => {
      qc.setQueryData(keys.project(p.id), p)
      void qc.invalidateQueries({ queryKey: keys.projects })
      toast('ok', 'Settings saved')
    },
    onError: (err) => setError(errorMessage(err)),
  })

  const submit = (e: FormEvent) => {
    e.preventDefault()
    setError(null)
    if (changed.length) save.mutate()
  }

  return (
    <section className="page" aria-labelledby="project-h">
      <p className="crumbs">
        <Link to="/projects">← Projects</Link>
      </p>
      <h1 id="project-h">{project.name}</h1>
      <p className="muted">
        <code>{project.path}</code> · <Link to={`/?project=${project.id}`}>its tasks on the board</Link>
      </p>
      <form className="panel form settings-form" onSubmit={submit}>
        <h2>Settings</h2>
        {FIELDS.map((f) => {
          const id = `set-${f.key}`
          const v = values[f.key] ?? ''
          const setV = (x: string) => setValues((s) => ({ ...s, [f.key]: x }))
          return (
            <div key={f.key} className={`field ${v !== start[f.key] ? 'field-changed' : ''}`}>
              <label htmlFor={id}>{f.label}</label>
              {f.kind === 'select' ? (
                <select id={id} value={v} onChange={(e) => setV(e.target.value)}>
                  {f.options.map((o) => (
                    <option key={o} value={o}>
                      {o}
                    </option>
                  ))}
                </select>
              ) : f.kind === 'bool' ? (
                <select id={id} value={v} onChange={(e) => setV(e.target.value)}>
                  <option value="true">yes</option>
                  <option value="false">no</option>
                </select>
              ) : (
                <input
                  id={id}
                  type={f.kind === 'number' ? 'number' : 'text'}
                  min={f.kind === 'number' ? f.min : undefined}
                  max={f.kind === 'number' ? f.max : undefined}
                  value={v}
                  placeholder={'optional' in f && f.optional ? 'none' : undefined}
                  onChange={(e) => setV(e.target.value)}
                  aria-describedby={f.help ? `${id}-help` : undefined}
                />
              )}
              {f.help && (
                <p className="muted small" id={`${id}-help`}>
                  {f.help}
                </p>
              )}
            </div>
          )
        })}
        {error && (
          <p className="note note-error" role="alert">
            {error}
          </p>
        )}
        <div className="row-actions">
          <button type="button" className="btn" disabled={!changed.length} onClick={() => setValues(start)}>
            Undo changes
          </button>
          <button type="submit" className="btn btn-primary" disabled={!changed.length || save.isPending}>
            Save{changed.length ? ` (${changed.length})` : ''}
          </button>
        </div>
      </form>
    </section>
  )
}
