// What needs a person, grouped (answers first, then what is stuck, then reviews),
// oldest first in each group. Each entry links to where it is handled and offers
// the cheap, safe actions in place: answer a permission, retry or skip a session.
import { useMemo, useState } from 'react'
import { Link } from 'react-router'
import { useQuery } from '@tanstack/react-query'
import { pendingPermissionsQuery } from '../../shared/api/queries'
import { useAnyTaskAction } from '../../shared/api/actions'
import type { PermissionRequest } from '../../shared/api/types'
import { ago, dateTime } from '../../shared/lib/format'
import { Empty, ErrorNote, Loading } from '../../shared/ui/bits'
import { notificationsQuery, useAnswerPermission, useSessionDecision } from './api'
import { GROUPS, KIND_LABEL, type Notification } from './types'

interface Option {
  optionId: string
  name: string
  kind: string
}

export function InboxList(props: { compact?: boolean; onNavigate?: () => void }) {
  const list = useQuery(notificationsQuery)
  const hasPermission = (list.data ?? []).some((n) => n.kind === 'permission')
  const permissions = useQuery({ ...pendingPermissionsQuery, enabled: hasPermission })
  const byId = useMemo(() => new Map((permissions.data ?? []).map((p) => [p.id, p])), [permissions.data])

  if (list.isPending) return <Loading what="notifications" />
  if (list.isError) return <ErrorNote error={list.error} title="Notifications" />
  const items = list.data
  if (items.length === 0) {
    return <Empty>Nothing needs you right now. New reviews, questions and conflicts show up here.</Empty>
  }
  return (
    <div className={props.compact ? 'inbox inbox-compact' : 'inbox'} data-testid="inbox-list">
      {GROUPS.map((g) => {
        const entries = items.filter((n) => g.kinds.includes(n.kind)).sort((a, b) => a.since.localeCompare(b.since))
        if (entries.length === 0) return null
        const hid = `inbox-g-${g.id}${props.compact ? '-c' : ''}`
        return (
          <section key={g.id} className="inbox-group" aria-labelledby={hid}>
            <h3 id={hid} className="inbox-group-title">
              {g.title} <span className="inbox-group-count">{entries.length}</span>
            </h3>
            <ul className="inbox-entries">
              {entries.map((n) => (
                <Entry key={n.key} n={n} permission={n.permission_id != null ? byId.get(n.permission_id) : undefined} onNavigate={props.onNavigate} />
              ))}
            </ul>
          </section>
        )
      })}
    </div>
  )
}

function Entry({ n, permission, onNavigate }: { n: Notification; permission?: PermissionRequest; onNavigate?: () => void }) {
  return (
    <li className={`inbox-entry inbox-${n.kind}`} data-key={n.key} data-kind={n.kind}>
      <div className="inbox-entry-head">
        <span className="inbox-kind">{KIND_LABEL[n.kind]}</span>
        <time className="muted small" dateTime={n.since} title={dateTime(n.since)}>
          {ago(n.since)}
        </time>
      </div>
      <Link to={n.link} className="inbox-title" onClick={onNavigate}>
        {n.title}
      </Link>
      {n.message && n.message !== n.title && <p className="inbox-msg">{sentence(n.message)}</p>}
      <p className="inbox-task muted small">
        <Link to={`/tasks/${n.spec_task_id}`} onClick={onNavigate}>
          #{n.spec_task_id} {n.spec_task_title}
        </Link>
        {n.task_key && <> · task {n.task_key}</>}
        {n.session_id != null && (
          <>
            {' '}
            · <Link to={`/sessions/${n.session_id}`} onClick={onNavigate}>session #{n.session_id}</Link>
          </>
        )}
      </p>
      <Actions n={n} permission={permission} />
    </li>
  )
}

/** The server's messages start in lower case (they also end log lines). */
function sentence(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1)
}

function Actions({ n, permission }: { n: Notification; permission?: PermissionRequest }) {
  const answer = useAnswerPermission()
  const decide = useSessionDecision()
  const taskAction = useAnyTaskAction()
  const [confirmSkip, setConfirmSkip] = useState(false)
  const what = `${KIND_LABEL[n.kind].toLowerCase()} of task #${n.spec_task_id}`

  if (n.kind === 'permission' && permission) {
    const options = (permission.options as unknown as Option[]).filter((o) => o && typeof o.optionId === 'string')
    return (
      <div className="row-actions inbox-actions" role="group" aria-label={`Answer “${permission.title}”`}>
        {options.map((o) => (
          <button
            key={o.optionId}
            type="button"
            className={`btn btn-sm ${o.kind.startsWith('allow') ? 'btn-primary' : ''}`}
            disabled={answer.isPending}
            aria-label={`${o.name}: ${permission.title}`}
            onClick={() => answer.mutate({ id: permission.id, option: o.optionId })}
          >
            {o.name}
          </button>
        ))}
      </div>
    )
  }
  const session = n.session_id
  if ((n.kind === 'conflict' || n.kind === 'session_failed') && session != null) {
    if (confirmSkip) {
      return (
        <div className="row-actions inbox-actions inbox-confirm" role="group" aria-label="Confirm skip">
          <span className="small">Skip it? Its task counts as done and nothing of it is merged.</span>
          <button type="button" className="btn btn-sm btn-danger" disabled={decide.isPending} onClick={() => decide.mutate({ id: session, decision: 'skip' })}>
            Skip
          </button>
          <button type="button" className="btn btn-sm" onClick={() => setConfirmSkip(false)}>
            Keep
          </button>
        </div>
      )
    }
    return (
      <div className="row-actions inbox-actions">
        <button
          type="button"
          className="btn btn-sm btn-primary"
          disabled={decide.isPending}
          aria-label={`Retry the ${what}`}
          title={n.kind === 'conflict' ? 'A conflict-fixing session resolves it' : 'The task runs again in the same worktree'}
          onClick={() => decide.mutate({ id: session, decision: 'retry' })}
        >
          Retry
        </button>
        <button type="button" className="btn btn-sm btn-ghost" aria-label={`Skip the ${what}…`} onClick={() => setConfirmSkip(true)}>
          Skip…
        </button>
      </div>
    )
  }
  if (n.kind === 'task_failed' && session == null && n.task_key == null) {
    return (
      <div className="row-actions inbox-actions">
        <button
          type="button"
          className="btn btn-sm btn-primary"
          disabled={taskAction.isPending}
          aria-label={`Retry task #${n.spec_task_id}`}
          onClick={() => taskAction.mutate({ id: n.spec_task_id, action: 'retry' })}
        >
          Retry
        </button>
      </div>
    )
  }
  return null
}
