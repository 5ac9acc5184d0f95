// Add a webhook: where to POST, for which project (or all), which kinds of
// notification (none checked: every kind), in which payload shape.
import { useState, type FormEvent } from 'react'
import { useQuery } from '@tanstack/react-query'
import { errorMessage } from '../../shared/api/client'
import { projectsQuery } from '../../shared/api/queries'
import { KIND_LABEL, NOTIFICATION_KINDS, type NotificationKind } from '../inbox/types'
import { useCreateWebhook } from './api'
import { FORMATS, type CreatedWebhook, type WebhookFormat } from './types'

export function AddWebhookForm({ onCreated }: { onCreated: (c: CreatedWebhook) => void }) {
  const projects = useQuery(projectsQuery)
  const [url, setUrl] = useState('')
  const [project, setProject] = useState('')
  const [format, setFormat] = useState<WebhookFormat>('generic')
  const [kinds, setKinds] = useState<NotificationKind[]>([])
  const [error, setError] = useState<string | null>(null)
  const create = useCreateWebhook((c) => {
    setUrl('')
    setKinds([])
    onCreated(c)
  })

  const submit = (e: FormEvent) => {
    e.preventDefault()
    setError(null)
    const u = url.trim()
    let parsed: URL | null = null
    try {
      parsed = new URL(u)
    } catch {
      parsed = null
    }
    if (!parsed || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')) {
      setError('Give a full http:// or https:// address.')
      return
    }
    create.mutate(
      { url: u, project_id: project ? Number(project) : null, kinds, format },
      { onError: (err) => setError(errorMessage(err)) },
    )
  }

  const toggle = (k: NotificationKind, on: boolean) =>
    setKinds((ks) => (on ? NOTIFICATION_KINDS.filter((x) => x === k || ks.includes(x)) : ks.filter((x) => x !== k)))

  return (
    <form className="panel grid-form webhook-form" onSubmit={submit} aria-labelledby="webhook-add-h" noValidate>
      <h2 id="webhook-add-h" className="span-2">
        Add a webhook
      </h2>
      <label htmlFor="webhook-url">URL</label>
      <input id="webhook-url" type="url" value={url} placeholder="https://hooks.example.com/spectask" onChange={(e) => setUrl(e.target.value)} />
      <label htmlFor="webhook-project">Project</label>
      <select id="webhook-project" value={project} onChange={(e) => setProject(e.target.value)}>
        <option value="">Every project</option>
        {(projects.data ?? []).map((p) => (
          <option key={p.id} value={p.id}>
            {p.name}
          </option>
        ))}
      </select>
      <label htmlFor="webhook-format">Payload</label>
      <select id="webhook-format" value={format} onChange={(e) => setFormat(e.target.value as WebhookFormat)}>
        {FORMATS.map((f) => (
          <option key={f.value} value={f.value}>
            {f.label}
          </option>
        ))}
      </select>
      <fieldset className="span-2 webhook-kinds">
        <legend>
          Kinds <span className="muted small">(none checked: every kind)</span>
        </legend>
        {NOTIFICATION_KINDS.map((k) => (
          <label key={k} className="check">
            <input type="checkbox" checked={kinds.includes(k)} onChange={(e) => toggle(k, e.target.checked)} />
            {KIND_LABEL[k]}
          </label>
        ))}
      </fieldset>
      <div className="span-2 row-actions">
        <button type="submit" className="btn btn-primary" disabled={create.isPending}>
          Add webhook
        </button>
        {error && (
          <span className="note note-error" role="alert">
            {error}
          </span>
        )}
      </div>
    </form>
  )
}
