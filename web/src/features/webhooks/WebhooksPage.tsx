// `/settings/webhooks`: where spectask POSTs each new notification, so a person
// hears about it with no dashboard open. The secret is shown once, at creation.
import { useState } from 'react'
import { useQuery } from '@tanstack/react-query'
import { projectsQuery } from '../../shared/api/queries'
import { dateTime } from '../../shared/lib/format'
import { Empty, ErrorNote, Loading } from '../../shared/ui/bits'
import { Dialog } from '../../shared/ui/Dialog'
import { toast } from '../../shared/ui/toast'
import { KIND_LABEL } from '../inbox/types'
import { AddWebhookForm } from './AddWebhookForm'
import { Deliveries } from './Deliveries'
import { SettingsNav } from './SettingsNav'
import { useDeleteWebhook, webhooksQuery } from './api'
import { FORMATS, type CreatedWebhook, type Webhook } from './types'
import './webhooks.css'

export function WebhooksPage() {
  const hooks = useQuery(webhooksQuery)
  const projects = useQuery(projectsQuery)
  const [created, setCreated] = useState<CreatedWebhook | null>(null)
  const [removing, setRemoving] = useState<Webhook | null>(null)
  const remove = useDeleteWebhook(() => setRemoving(null))
  const projectName = (id: number | null | undefined) =>
    id == null ? 'Every project' : (projects.data?.find((p) => p.id === id)?.name ?? `project #${id}`)

  return (
    <section className="page" aria-labelledby="webhooks-h">
      <SettingsNav />
      <h1 id="webhooks-h">Webhooks</h1>
      <p className="muted">
        For each new notification a webhook wants, spectask POSTs a JSON payload (kind, task, session, title, link)
        signed with the webhook’s secret: header <code>X-Spectask-Signature: sha256=&lt;hex HMAC-SHA256 of the body&gt;</code>.
        Failed deliveries are retried with backoff.
      </p>
      <AddWebhookForm onCreated={setCreated} />
      {hooks.isError && <ErrorNote error={hooks.error} title="Webhooks" />}
      {hooks.isPending ? (
        <Loading what="webhooks" />
      ) : hooks.data && hooks.data.length === 0 ? (
        <Empty>No webhooks yet.</Empty>
      ) : (
        <ul className="webhooks">
          {(hooks.data ?? []).map((w) => (
            <li key={w.id} className="panel webhook" data-webhook={w.id} aria-labelledby={`webhook-${w.id}-url`}>
              <div className="webhook-head">
                <code id={`webhook-${w.id}-url`} className="webhook-url">
                  {w.url}
                </code>
                <button type="button" className="btn btn-sm btn-ghost btn-danger-text" aria-label={`Remove webhook ${w.url}`} onClick={() => setRemoving(w)}>
                  Remove…
                </button>
              </div>
              <p className="webhook-meta small">
                <span>{projectName(w.project_id)}</span>
                <span>{FORMATS.find((f) => f.value === w.format)?.label ?? w.format}</span>
                <span>{w.kinds.length === 0 ? 'Every kind' : w.kinds.map((k) => KIND_LABEL[k] ?? k).join(', ')}</span>
                <span className="muted">added {dateTime(w.created_at)}</span>
              </p>
              <h3 className="webhook-sub">Deliveries</h3>
              <Deliveries webhookId={w.id} />
            </li>
          ))}
        </ul>
      )}
      <Dialog open={created !== null} title="Webhook added" onClose={() => setCreated(null)}>
        {created && (
          <>
            <p>
              This is the only time its secret is shown. The receiver checks each payload with it: the hex HMAC-SHA256
              of the raw body, in <code>X-Spectask-Signature</code> after <code>sha256=</code>.
            </p>
            <div className="token-value">
              <code data-testid="webhook-secret">{created.secret}</code>
              <button
                type="button"
                className="btn btn-sm"
                aria-label="Copy the secret"
                onClick={() =>
                  navigator.clipboard?.writeText(created.secret).then(
                    () => toast('ok', 'Copied'),
                    () => toast('error', 'Copy failed: select the text instead'),
                  )
                }
              >
                Copy
              </button>
            </div>
            <div className="dialog-actions">
              <button type="button" className="btn btn-primary" onClick={() => setCreated(null)}>
                Done
              </button>
            </div>
          </>
        )}
      </Dialog>
      <Dialog open={removing !== null} title="Remove this webhook?" onClose={() => setRemoving(null)}>
        {removing && (
          <>
            <p>
              Nothing more is sent to <code className="webhook-url">{removing.url}</code>. What it was sent stays
              recorded.
            </p>
            <div className="dialog-actions">
              <button type="button" className="btn" onClick={() => setRemoving(null)}>
                Keep it
              </button>
              <button type="button" className="btn btn-danger" disabled={remove.isPending} onClick={() => remove.mutate(removing.id)}>
                Remove
              </button>
            </div>
          </>
        )}
      </Dialog>
    </section>
  )
}
