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

/** A length of time in the largest two units: `under 1 s`, `42 s`, `3 min 5 s`, `2 h 10 min`, `4 d 3 h`. */
export function duration(ms: number): string {
  const secs = Math.floor(Math.abs(ms) / 1000)
  if (secs < 1) return 'under 1 s'
  if (secs < 60) return `${secs} s`
  const two = (big: number, bigUnit: string, small: number, smallUnit: string) =>
    small ? `${big} ${bigUnit} ${small} ${smallUnit}` : `${big} ${bigUnit}`
  if (secs < 3600) return two(Math.floor(secs / 60), 'min', secs % 60, 's')
  if (secs < 86400) return two(Math.floor(secs / 3600), 'h', Math.floor((secs % 3600) / 60), 'min')
  return two(Math.floor(secs / 86400), 'd', Math.floor((secs % 86400) / 3600), 'h')
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
