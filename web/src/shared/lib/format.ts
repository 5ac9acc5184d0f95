import type { SpecTaskStatus } from '../api/types'

const rtf = new Intl.RelativeTimeFormat('en', { numeric: 'auto' })

export function ago(iso: string, now = Date.now()): string {
  const secs = Math.round((new Date(iso).getTime() - now) / 1000)
  const abs = Math.abs(secs)
  if (abs < 45) return rtf.format(secs, 'second')
  if (abs < 45 * 60) return rtf.format(Math.round(secs / 60), 'minute')
  if (abs < 22 * 3600) return rtf.format(Math.round(secs / 3600), 'hour')
  return rtf.format(Math.round(secs / 86400), 'day')
}

export function dateTime(iso: string): string {
  return new Date(iso).toLocaleString()
}

export const STATUS_LABEL: Record<SpecTaskStatus, string> = {
  backlog: 'Backlog',
  planning_queued: 'Planning queued',
  planning: 'Planning',
  spec_review: 'Spec review',
  implementation_queued: 'Implementation queued',
  implementing: 'Implementing',
  implementation_review: 'Implementation review',
  done: 'Done',
  failed: 'Failed',
  rejected: 'Rejected',
  cancelled: 'Cancelled',
}

export function label(s: string): string {
  return s.replace(/[_-]/g, ' ').replace(/^./, (c) => c.toUpperCase())
}
