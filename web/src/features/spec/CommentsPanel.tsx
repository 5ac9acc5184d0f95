import { useEffect, useRef, useState, type FormEvent } from 'react'
import { useMutation, useQueryClient } from '@tanstack/react-query'
import { api, errorMessage, unwrap } from '../../shared/api/client'
import { keys } from '../../shared/api/queries'
import type { ReviewComment } from '../../shared/api/types'
import { ago, dateTime } from '../../shared/lib/format'
import { toast } from '../../shared/ui/toast'
import { useActorName } from '../../shared/api/actors'
import type { Anchor } from './DocumentView'

function anchorText(a: { line_start?: number | null; line_end?: number | null; quote?: string | null }): string {
  if (a.quote) return `“${a.quote.length > 80 ? `${a.quote.slice(0, 80)}…` : a.quote}”`
  if (a.line_start != null) return a.line_end != null && a.line_end !== a.line_start ? `lines ${a.line_start}–${a.line_end}` : `line ${a.line_start}`
  return 'the whole document'
}

export function CommentsPanel(props: {
  taskId: number
  version: number
  document: string | null
  comments: ReviewComment[]
  anchor: Anchor | null
  setAnchor: (a: Anchor | null) => void
  highlight: number | null
  onJump: (c: ReviewComment) => void
  canComment: boolean
}) {
  const { taskId, version, document } = props
  const qc = useQueryClient()
  const [body, setBody] = useState('')
  const [error, setError] = useState<string | null>(null)
  const [showResolved, setShowResolved] = useState(false)
  const textRef = useRef<HTMLTextAreaElement>(null)
  const actor = useActorName()

  useEffect(() => {
    if (props.anchor) textRef.current?.focus()
  }, [props.anchor])

  useEffect(() => {
    if (props.highlight == null) return
    const el = window.document.getElementById(`comment-${props.highlight}`)
    el?.scrollIntoView({ block: 'nearest' })
    el?.classList.add('flash')
    const t = setTimeout(() => el?.classList.remove('flash'), 1600)
    return () => clearTimeout(t)
  }, [props.highlight])

  const refresh = () => {
    void qc.invalidateQueries({ queryKey: keys.version(taskId, version) })
  }

  const add = useMutation({
    mutationFn: (a: Anchor) =>
      unwrap(
        api.POST('/api/v1/spec-tasks/{id}/spec-versions/{number}/comments', {
          params: { path: { id: taskId, number: version } },
          body: {
            document: a.document,
            line_start: a.line_start ?? null,
            line_end: a.line_end ?? null,
            quote: a.quote ?? null,
            body: body.trim(),
          },
        }),
      ),
    onSuccess: () => {
      setBody('')
      props.setAnchor(null)
      refresh()
    },
    onError: (err) => setError(errorMessage(err)),
  })

  const resolve = useMutation({
    mutationFn: (id: number) => unwrap(api.POST('/api/v1/review-comments/{id}/resolve', { params: { path: { id } } })),
    onSuccess: refresh,
    onError: (err) => toast('error', `Resolve refused: ${errorMessage(err)}`),
  })

  const submit = (e: FormEvent) => {
    e.preventDefault()
    setError(null)
    if (!props.anchor) return
    if (!body.trim()) {
      setError('Write the comment first.')
      return
    }
    add.mutate(props.anchor)
  }

  const mine = props.comments.filter((c) => document === null || c.document === document)
  const open = mine.filter((c) => !c.resolved)
  const resolved = mine.filter((c) => c.resolved)
  const list = showResolved ? mine : open

  return (
    <aside className="comments" aria-labelledby="comments-h">
      <div className="comments-head">
        <h2 id="comments-h">
          Comments <span className="muted">({open.length} open{resolved.length ? `, ${resolved.length} resolved` : ''})</span>
        </h2>
        {resolved.length > 0 && (
          <label className="check small">
            <input type="checkbox" checked={showResolved} onChange={(e) => setShowResolved(e.target.checked)} /> show resolved
          </label>
        )}
      </div>
      {props.canComment && document && !props.anchor && (
        <p className="muted small">
          Click a line number (or the + beside a block), or select a passage, to comment on it.{' '}
          <button type="button" className="link-btn" onClick={() => props.setAnchor({ document })}>
            Comment on the whole document
          </button>
        </p>
      )}
      {props.anchor && (
        <form className="comment-form" onSubmit={submit} aria-label="New comment">
          <p className="small">
            On <strong>{props.anchor.document}</strong>, {anchorText(props.anchor)}
          </p>
          <label htmlFor="comment-body" className="visually-hidden">
            Comment
          </label>
          <textarea
            id="comment-body"
            ref={textRef}
            rows={4}
            value={body}
            placeholder="What should change here?"
            onChange={(e) => setBody(e.target.value)}
            onKeyDown={(e) => {
              if (e.key === 'Enter' && (e.metaKey || e.ctrlKey)) submit(e)
              if (e.key === 'Escape') props.setAnchor(null)
            }}
          />
          {error && (
            <p className="note note-error" role="alert">
              {error}
            </p>
          )}
          <div className="row-actions">
            <button type="button" className="btn btn-sm" onClick={() => props.setAnchor(null)}>
              Discard
            </button>
            <button type="submit" className="btn btn-sm btn-primary" disabled={add.isPending}>
              Add comment
            </button>
          </div>
        </form>
      )}
      {list.length === 0 ? (
        <p className="muted small">{mine.length ? 'Every comment here is resolved.' : 'No comments yet.'}</p>
      ) : (
        <ol className="comment-list">
          {list.map((c) => (
            <li key={c.id} id={`comment-${c.id}`} className={`comment ${c.resolved ? 'comment-resolved' : ''}`}>
              <button type="button" className="link-btn small" onClick={() => props.onJump(c)}>
                {document === null ? `${c.document}, ` : ''}
                {anchorText(c)}
              </button>
              <p className="comment-body">{c.body}</p>
              <p className="muted small">
                {actor(c.author)} · <span title={dateTime(c.created_at)}>{ago(c.created_at)}</span>
                {c.resolved ? ' · resolved' : ''}
              </p>
              {!c.resolved && (
                <button
                  type="button"
                  className="btn btn-sm btn-ghost"
                  disabled={resolve.isPending}
                  onClick={() => resolve.mutate(c.id)}
                  aria-label={`Resolve comment ${c.id}`}
                >
                  Resolve
                </button>
              )}
            </li>
          ))}
        </ol>
      )}
    </aside>
  )
}
