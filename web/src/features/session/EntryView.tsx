// One row of the transcript: a message (markdown), a thought (collapsed), a prompt
// (collapsed), a tool call with its status, paths, diffs and output, a plan, usage,
// a permission answer, the end of a turn, an error.
import { useMemo } from 'react'
import type { TranscriptEntry } from '../../shared/api/types'
import { label } from '../../shared/lib/format'
import { renderBlocks } from '../spec/markdown'
import type { Row, ToolCall, ToolContent } from './transcript'
import { DiffBlock } from './DiffBlock'

export function RowView({ row, worktree }: { row: Row; worktree: string | null }) {
  if (row.type === 'tool') return <ToolCallView call={row.call} worktree={worktree} />
  return <EntryView entry={row.entry} />
}

function Markdown({ text }: { text: string }) {
  const html = useMemo(() => renderBlocks(text).map((b) => b.html).join(''), [text])
  return <div className="md tr-md" dangerouslySetInnerHTML={{ __html: html }} />
}

function firstLine(text: string, max = 120): string {
  const line = text.trim().split('\n')[0] ?? ''
  return line.length > max ? `${line.slice(0, max)}…` : line
}

function EntryView({ entry: e }: { entry: TranscriptEntry }) {
  const data = e.data as unknown
  switch (e.kind) {
    case 'message':
      return (
        <div className="te te-message" data-kind="message">
          <Markdown text={e.content} />
        </div>
      )
    case 'thought':
      return (
        <details className="te te-thought" data-kind="thought">
          <summary>
            <span className="te-label">Thought</span> <span className="muted">{firstLine(e.content)}</span>
          </summary>
          <p className="te-pre">{e.content}</p>
        </details>
      )
    case 'prompt':
    case 'user_message':
      return (
        <details className="te te-prompt" data-kind={e.kind}>
          <summary>
            <span className="te-label">{e.kind === 'prompt' ? 'Prompt' : 'User'}</span>{' '}
            <span className="muted">
              {e.content.split('\n').length} lines sent to the agent · {firstLine(e.content, 80)}
            </span>
          </summary>
          <pre className="te-code">{e.content}</pre>
        </details>
      )
    case 'plan':
      return <PlanView entries={Array.isArray(data) ? (data as PlanEntry[]) : []} />
    case 'usage': {
      const u = (data ?? {}) as { used?: number; size?: number; cost?: number | null }
      return (
        <div className="te te-usage muted small" data-kind="usage">
          Context {fmt(u.used)} / {fmt(u.size)} tokens{u.cost != null ? ` · $${u.cost.toFixed(4)}` : ''}
        </div>
      )
    }
    case 'permission': {
      const outcome = (data ?? {}) as { outcome?: string; optionId?: string }
      const allowed = outcome.optionId ? /allow/i.test(outcome.optionId) : false
      return (
        <div className={`te te-permission ${allowed ? 'ok' : 'bad'}`} data-kind="permission">
          <span className="te-label">Permission</span> {e.content}
        </div>
      )
    }
    case 'stop_reason':
      return (
        <div className="te te-stop muted small" data-kind="stop_reason">
          <span>Turn ended: {e.content.replace(/([a-z])([A-Z])/g, '$1 $2').replace(/_/g, ' ').toLowerCase()}</span>
        </div>
      )
    case 'error':
      return (
        <div className="te te-error note note-error" data-kind="error">
          {e.content}
        </div>
      )
    default:
      return (
        <div className="te" data-kind={e.kind}>
          <span className="te-label">{label(e.kind)}</span> {e.content}
        </div>
      )
  }
}

function fmt(n: number | undefined): string {
  return n == null ? '?' : n.toLocaleString('en')
}

interface PlanEntry {
  content?: string
  status?: string
  priority?: string
}

function PlanView({ entries }: { entries: PlanEntry[] }) {
  return (
    <div className="te te-plan" data-kind="plan">
      <span className="te-label">Plan</span>
      <ol className="te-plan-list">
        {entries.map((p, i) => (
          <li key={i} className={`plan-${p.status ?? 'pending'}`}>
            <span className="te-check" aria-hidden="true">
              {p.status === 'completed' ? '✓' : p.status === 'in_progress' ? '▸' : '○'}
            </span>{' '}
            {p.content}
            <span className="visually-hidden"> ({label(p.status ?? 'pending')})</span>
          </li>
        ))}
      </ol>
    </div>
  )
}

function relative(path: string, worktree: string | null): string {
  if (worktree && path.startsWith(worktree.replace(/\/$/, '') + '/')) return path.slice(worktree.replace(/\/$/, '').length + 1)
  return path
}

const KIND_ICON: Record<string, string> = {
  edit: '✎',
  read: '👁',
  execute: '▶',
  delete: '🗑',
  move: '⇄',
  search: '⌕',
  fetch: '⇣',
  think: '…',
}

function ToolCallView({ call, worktree }: { call: ToolCall; worktree: string | null }) {
  const status = call.status ?? 'pending'
  const content = Array.isArray(call.content) ? call.content : []
  const locations = Array.isArray(call.locations) ? call.locations : []
  return (
    <div className={`te te-tool tool-${status}`} data-kind="tool_call" data-tool-call-id={call.toolCallId}>
      <div className="tool-head">
        <span className="tool-icon" aria-hidden="true">{KIND_ICON[call.kind ?? ''] ?? '⚙'}</span>
        <span className="tool-title">{call.title || call.toolCallId}</span>
        <span className="muted small">{call.kind ?? 'tool'}</span>
        <span className={`badge tool-status tool-status-${status}`} data-status={status}>
          {label(status)}
        </span>
      </div>
      {locations.length > 0 && (
        <ul className="tool-paths" aria-label="Paths it touched">
          {locations.map((l, i) => (
            <li key={i}>
              <code>
                {relative(l.path, worktree)}
                {l.line != null ? `:${l.line}` : ''}
              </code>
            </li>
          ))}
        </ul>
      )}
      {content.map((c, i) => (
        <ContentView key={i} item={c} worktree={worktree} />
      ))}
    </div>
  )
}

function ContentView({ item, worktree }: { item: ToolContent; worktree: string | null }) {
  if (item.type === 'diff') {
    return <DiffBlock path={relative(item.path, worktree)} oldText={item.oldText} newText={item.newText} />
  }
  if (item.type === 'terminal') {
    return <p className="muted small">Terminal {item.terminalId}</p>
  }
  const text = item.content?.text ?? ''
  if (!text) return null
  return <pre className="te-code tool-output">{text}</pre>
}
