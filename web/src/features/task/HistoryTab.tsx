import { useQuery } from '@tanstack/react-query'
import { eventsQuery } from '../../shared/api/queries'
import type { Event, SpecTask } from '../../shared/api/types'
import { Empty, ErrorNote, Loading } from '../../shared/ui/bits'
import { ago, dateTime } from '../../shared/lib/format'
import { useActorName } from '../../shared/api/actors'

function describe(e: Event): string {
  const d = (e.data ?? {}) as Record<string, unknown>
  switch (e.kind) {
    case 'spec_task.status_changed':
      return `${String(d.from ?? '?').replace(/_/g, ' ')} → ${String(d.to ?? '?').replace(/_/g, ' ')}${d.reason ? ` (${String(d.reason)})` : ''}`
    case 'spec_task.created':
      return `created “${String(d.title ?? '')}”`
    case 'spec_version.created':
      return `spec version ${String(d.number ?? '')} written`
    case 'review.recorded':
      return `review: ${String(d.verdict ?? '').replace(/_/g, ' ')}`
    case 'review_comment.added':
      return `comment on ${String(d.document ?? 'the spec')}`
    case 'work_session.status_changed':
      return `session ${e.entity_id}: ${String(d.from ?? '?')} → ${String(d.to ?? '?')}`
    default: {
      if (d.from != null && d.to != null) {
        const what = e.entity.replace(/_/g, ' ')
        const key = d.key != null ? ` ${String(d.key)}` : e.entity_id != null ? ` ${e.entity_id}` : ''
        return `${what}${key}: ${String(d.from).replace(/_/g, ' ')} → ${String(d.to).replace(/_/g, ' ')}${d.reason ? ` (${String(d.reason)})` : ''}`
      }
      const bits = Object.entries(d)
        .filter(([, v]) => v !== null && typeof v !== 'object')
        .slice(0, 4)
        .map(([k, v]) => `${k}: ${String(v)}`)
      return bits.join(', ')
    }
  }
}

export function HistoryTab({ task }: { task: SpecTask }) {
  const events = useQuery(eventsQuery(task.id))
  const actor = useActorName()
  if (events.isError) return <ErrorNote error={events.error} />
  if (!events.data) return <Loading what="history" />
  const list = events.data.filter((e) => e.kind !== 'transcript.appended').slice().reverse()
  if (list.length === 0) return <Empty>No events yet.</Empty>
  return (
    <section aria-label="History">
      <p className="muted small">{list.length} events, newest first (transcript chunks left out)</p>
      <ol className="timeline">
        {list.map((e) => (
          <li key={e.id} className={`tl-item tl-${e.entity}`}>
            <span className="tl-kind">{e.kind}</span>
            <span className="tl-text">{describe(e)}</span>
            <span className="tl-when muted" title={dateTime(e.created_at)}>
              {ago(e.created_at)} · {actor(e.actor)} · #{e.id}
            </span>
          </li>
        ))}
      </ol>
    </section>
  )
}
