// One spec document, rendered (block by block) or as source (line by line), with
// its comments and findings beside the lines they are about. A person comments on
// a block or a line (the gutter button), a range (shift-click a line number), or a
// selected passage (select text, then "Comment on selection").
import { memo, useEffect, useMemo, useRef, useState } from 'react'
import type { ReviewComment, SpecReport } from '../../shared/api/types'
import { renderBlocks } from './markdown'
import { CommentIcon } from '../../shared/ui/icons'

export interface Anchor {
  document: string
  line_start?: number
  line_end?: number
  quote?: string
}

type Finding = SpecReport['errors'][number]

function commentLine(c: ReviewComment, raw: string): number | null {
  if (c.line_start != null) return c.line_start
  if (c.quote) {
    const at = raw.indexOf(c.quote)
    if (at >= 0) return raw.slice(0, at).split('\n').length
  }
  return null
}

/** A selected passage as a quote the server will find in the source, or else its lines. */
export function anchorFromSelection(document: string, raw: string, text: string, start: number, end: number): Anchor {
  const t = text.trim()
  if (t && raw.includes(t)) return { document, quote: t }
  // Rendered text loses markdown syntax: try its longest line, else the block's lines.
  const longest = t.split('\n').map((s) => s.trim()).sort((a, b) => b.length - a.length)[0] ?? ''
  if (longest.length >= 8 && raw.includes(longest)) return { document, quote: longest }
  return { document, line_start: start, line_end: end }
}

export const DocumentView = memo(function DocumentView(props: {
  name: string
  raw: string
  mode: 'rendered' | 'source'
  comments: ReviewComment[]
  findings: { errors: Finding[]; warnings: Finding[] }
  focusLine: number | null
  onAnchor: (a: Anchor) => void
  onShowComment: (id: number) => void
}) {
  const { name, raw, mode } = props
  const ref = useRef<HTMLDivElement>(null)
  const [selection, setSelection] = useState<{ anchor: Anchor; x: number; y: number } | null>(null)
  const [rangeStart, setRangeStart] = useState<number | null>(null)

  const byLine = useMemo(() => {
    const m = new Map<number, ReviewComment[]>()
    for (const c of props.comments) {
      const l = commentLine(c, raw)
      if (l == null) continue
      const list = m.get(l) ?? []
      list.push(c)
      m.set(l, list)
    }
    return m
  }, [props.comments, raw])

  const findingsByLine = useMemo(() => {
    const m = new Map<number, { kind: 'error' | 'warning'; message: string }[]>()
    for (const [kind, list] of [['error', props.findings.errors], ['warning', props.findings.warnings]] as const) {
      for (const f of list) {
        if (f.document !== name || !f.line) continue
        const l = m.get(f.line) ?? []
        l.push({ kind, message: f.message })
        m.set(f.line, l)
      }
    }
    return m
  }, [props.findings, name])

  useEffect(() => {
    if (!props.focusLine || !ref.current) return
    const el =
      ref.current.querySelector<HTMLElement>(`[data-line="${props.focusLine}"]`) ??
      Array.from(ref.current.querySelectorAll<HTMLElement>('[data-start]')).find(
        (b) => Number(b.dataset.start) <= props.focusLine! && Number(b.dataset.end) >= props.focusLine!,
      )
    if (el) {
      el.scrollIntoView({ block: 'center' })
      el.classList.add('flash')
      setTimeout(() => el.classList.remove('flash'), 1600)
    }
  }, [props.focusLine, mode, name])

  const onMouseUp = () => {
    const sel = window.getSelection()
    const text = sel?.toString() ?? ''
    if (!sel || sel.rangeCount === 0 || !text.trim() || !ref.current) {
      setSelection(null)
      return
    }
    const range = sel.getRangeAt(0)
    if (!ref.current.contains(range.commonAncestorContainer)) return
    const node = range.startContainer instanceof Element ? range.startContainer : range.startContainer.parentElement
    const block = node?.closest<HTMLElement>('[data-start], [data-line]')
    const endNode = range.endContainer instanceof Element ? range.endContainer : range.endContainer.parentElement
    const endBlock = endNode?.closest<HTMLElement>('[data-start], [data-line]')
    const start = Number(block?.dataset.start ?? block?.dataset.line ?? 1)
    const end = Number(endBlock?.dataset.end ?? endBlock?.dataset.line ?? start)
    const rect = range.getBoundingClientRect()
    const box = ref.current.getBoundingClientRect()
    setSelection({
      anchor: anchorFromSelection(name, raw, text, start, Math.max(start, end)),
      x: Math.max(0, Math.min(rect.left - box.left, box.width - 200)),
      y: rect.bottom - box.top + 6,
    })
  }

  const marks = (from: number, to: number) => {
    const cs: ReviewComment[] = []
    const fs: { kind: 'error' | 'warning'; message: string }[] = []
    for (let l = from; l <= to; l++) {
      cs.push(...(byLine.get(l) ?? []))
      fs.push(...(findingsByLine.get(l) ?? []))
    }
    return (
      <>
        {fs.map((f, i) => (
          <span key={`f${i}`} className={`finding-mark finding-${f.kind}`} title={f.message}>
            {f.kind === 'error' ? '✖' : '⚠'} <span className="visually-hidden">{f.kind}: </span>
            <span className="finding-text">{f.message}</span>
          </span>
        ))}
        {cs.length > 0 && (
          <button
            type="button"
            className={`comment-mark ${cs.every((c) => c.resolved) ? 'resolved' : ''}`}
            aria-label={`${cs.length} comment${cs.length > 1 ? 's' : ''} here`}
            onClick={() => props.onShowComment(cs[0]!.id)}
          >
            <CommentIcon /> {cs.length}
          </button>
        )}
      </>
    )
  }

  return (
    <div className={`doc doc-${mode}`} ref={ref} onMouseUp={onMouseUp} data-document={name}>
      {mode === 'rendered' ? (
        <RenderedBlocks raw={raw} onAnchor={props.onAnchor} name={name} marks={marks} />
      ) : (
        <div className="source" role="table" aria-label={`${name} source`}>
          {raw.split('\n').map((text, i) => {
            const n = i + 1
            const inRange = rangeStart !== null && n === rangeStart
            return (
              <div key={n} className={`src-line ${inRange ? 'range-start' : ''}`} data-line={n} role="row">
                <button
                  type="button"
                  className="src-no"
                  aria-label={`Comment on line ${n}${rangeStart !== null ? ` (or shift-click for lines ${Math.min(rangeStart, n)}–${Math.max(rangeStart, n)})` : ''}`}
                  title="Comment on this line (shift-click a second line for a range)"
                  onClick={(e) => {
                    if (e.shiftKey && rangeStart !== null) {
                      props.onAnchor({ document: name, line_start: Math.min(rangeStart, n), line_end: Math.max(rangeStart, n) })
                      setRangeStart(null)
                    } else {
                      setRangeStart(n)
                      props.onAnchor({ document: name, line_start: n, line_end: n })
                    }
                  }}
                >
                  {n}
                </button>
                <code className="src-text" role="cell">
                  {text || '\u00a0'}
                </code>
                <span className="src-marks">{marks(n, n)}</span>
              </div>
            )
          })}
        </div>
      )}
      {selection && (
        <button
          type="button"
          className="btn btn-sm btn-primary selection-btn"
          style={{ left: selection.x, top: selection.y }}
          onMouseDown={(e) => e.preventDefault()}
          onClick={() => {
            props.onAnchor(selection.anchor)
            setSelection(null)
            window.getSelection()?.removeAllRanges()
          }}
        >
          Comment on selection
        </button>
      )}
    </div>
  )
})

function RenderedBlocks(props: {
  raw: string
  name: string
  onAnchor: (a: Anchor) => void
  marks: (from: number, to: number) => React.ReactNode
}) {
  const blocks = useMemo(() => renderBlocks(props.raw), [props.raw])
  return (
    <>
      {blocks.map((b) => (
        <div key={`${b.start}-${b.end}`} className={`block block-${b.type}`} data-start={b.start} data-end={b.end}>
          <div className="block-gutter">
            <button
              type="button"
              className="block-add"
              aria-label={b.start === b.end ? `Comment on line ${b.start}` : `Comment on lines ${b.start}–${b.end}`}
              title={b.start === b.end ? `Line ${b.start}` : `Lines ${b.start}–${b.end}`}
              onClick={() => props.onAnchor({ document: props.name, line_start: b.start, line_end: b.end })}
            >
              <span className="block-no">{b.start}</span>
              <span className="block-plus" aria-hidden="true">+</span>
            </button>
          </div>
          <div className="block-body md" dangerouslySetInnerHTML={{ __html: b.html }} />
          <div className="block-marks">{props.marks(b.start, b.end)}</div>
        </div>
      ))}
    </>
  )
}
