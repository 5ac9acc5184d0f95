// One webhook's deliveries, newest first: status, attempts, the receiver's last
// answer or the error, and when the next attempt is due. Live through live.ts.
import { useState } from 'react'
import { Link } from 'react-router'
import { useQuery } from '@tanstack/react-query'
import { ago, dateTime } from '../../shared/lib/format'
import { ErrorNote, Loading } from '../../shared/ui/bits'
import { KIND_LABEL } from '../inbox/types'
import { deliveriesQuery } from './api'
import type { WebhookDelivery } from './types'

const FIRST = 20

export function Deliveries({ webhookId }: { webhookId: number }) {
  const q = useQuery(deliveriesQuery(webhookId))
  const [all, setAll] = useState(false)
  if (q.isPending) return <Loading what="deliveries" />
  if (q.isError) return <ErrorNote error={q.error} title="Deliveries" />
  const list = q.data
  if (list.length === 0) return <p className="muted small webhook-none">No deliveries yet: one is made for each new notification this webhook wants.</p>
  const shown = all ? list : list.slice(0, FIRST)
  return (
    <div className="table-scroll">
      <table className="table webhook-deliveries" aria-label={`Deliveries of webhook #${webhookId}`}>
        <thead>
          <tr>
            <th scope="col">Status</th>
            <th scope="col">Notification</th>
            <th scope="col">Attempts</th>
            <th scope="col">Last answer</th>
            <th scope="col">When</th>
          </tr>
        </thead>
        <tbody>
          {shown.map((d) => (
            <tr key={d.id} data-delivery={d.id} data-status={d.status}>
              <td className="d-status">
                <span className={`badge delivery-${d.status}`}>{d.status}</span>
              </td>
              <td className="d-what">
                {KIND_LABEL[d.kind] ?? d.kind}
                <div className="small">
                  <Link to={`/tasks/${d.spec_task_id}`}>task #{d.spec_task_id}</Link>
                </div>
              </td>
              <td className="d-attempts" data-label="Attempts">
                {d.attempts}
              </td>
              <td className="d-answer" data-label="Last answer">
                {answer(d)}
              </td>
              <td className="d-when small">{when(d)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {list.length > FIRST && !all && (
        <button type="button" className="btn btn-sm btn-ghost" onClick={() => setAll(true)}>
          Show all {list.length}
        </button>
      )}
    </div>
  )
}

function answer(d: WebhookDelivery) {
  if (d.last_error) {
    return (
      <span className="webhook-error" title={d.last_error}>
        {d.last_status != null && <b>{d.last_status} </b>}
        {d.last_error}
      </span>
    )
  }
  if (d.last_status != null) return <span>HTTP {d.last_status}</span>
  return <span className="muted">—</span>
}

function when(d: WebhookDelivery) {
  if (d.delivered_at) return <time dateTime={d.delivered_at} title={dateTime(d.delivered_at)}>delivered {ago(d.delivered_at)}</time>
  if (d.status === 'pending' && d.next_attempt_at) {
    return <time dateTime={d.next_attempt_at} title={dateTime(d.next_attempt_at)}>next try {ago(d.next_attempt_at)}</time>
  }
  return <time dateTime={d.created_at} title={dateTime(d.created_at)}>{ago(d.created_at)}</time>
}
