import type { ReactNode } from 'react'
import type { Priority, SpecTaskStatus } from '../api/types'
import { STATUS_LABEL, label } from '../lib/format'
import { errorMessage } from '../api/client'

export function StatusBadge({ status }: { status: SpecTaskStatus }) {
  return <span className={`badge status-${status}`}>{STATUS_LABEL[status] ?? label(status)}</span>
}

export function PriorityBadge({ priority }: { priority: Priority }) {
  return (
    <span className={`badge prio prio-${priority}`} title={`Priority: ${priority}`}>
      {priority}
    </span>
  )
}

export function ProgressBar({ fraction, label: name }: { fraction: number; label: string }) {
  const pct = Math.round(Math.max(0, Math.min(1, fraction)) * 100)
  return (
    <div className="progress" role="progressbar" aria-label={name} aria-valuenow={pct} aria-valuemin={0} aria-valuemax={100}>
      <div className="progress-fill" style={{ width: `${pct}%` }} />
    </div>
  )
}

export function Loading({ what }: { what: string }) {
  return (
    <p className="muted loading" role="status">
      Loading {what}…
    </p>
  )
}

export function ErrorNote({ error, title }: { error: unknown; title?: string }) {
  return (
    <div className="note note-error" role="alert">
      {title && <strong>{title}: </strong>}
      {errorMessage(error)}
    </div>
  )
}

export function Empty({ children }: { children: ReactNode }) {
  return <p className="muted empty">{children}</p>
}
