// The plan's task graph: tasks as nodes coloured by status, an edge for each
// "waits for", the critical path (the longest chain of tasks not yet done) drawn
// bold. A node opens its latest session. Scrolls and pans (drag) when large; zooms.
// A plan with spec-kit phases gets a labelled band behind each phase's columns.
import { memo, useMemo, useRef, useState, type KeyboardEvent, type PointerEvent } from 'react'
import { useNavigate } from 'react-router'
import { label } from '../../shared/lib/format'
import { layout, NODE_H, NODE_W, type PlacedNode } from './layout'
import type { TaskGraphView, TaskProgress } from './types'

const STATUSES = ['pending', 'in_progress', 'blocked', 'failed', 'done', 'skipped', 'cancelled'] as const

export const TaskGraph = memo(function TaskGraph({ graph, tasks }: { graph: TaskGraphView; tasks: TaskProgress[] }) {
  const g = useMemo(() => layout(graph), [graph])
  const latest = useMemo(() => new Map(tasks.map((t) => [t.key, t.session_ids.at(-1) ?? null])), [tasks])
  const onPath = useMemo(() => new Set(g.critical), [g])
  const [zoom, setZoom] = useState(1)
  const navigate = useNavigate()
  const scroller = useRef<HTMLDivElement>(null)
  const drag = useRef<{ x: number; y: number; left: number; top: number } | null>(null)

  if (graph.nodes.length === 0) return null
  const open = (n: PlacedNode) => {
    const s = latest.get(n.key)
    if (s != null) navigate(`/sessions/${s}`)
  }
  const onKey = (e: KeyboardEvent, n: PlacedNode) => {
    if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault()
      open(n)
    }
  }
  // Drag on the background pans the scroll area.
  const down = (e: PointerEvent) => {
    const el = scroller.current
    if (!el || (e.target as Element).closest('.gnode') || e.button !== 0) return
    drag.current = { x: e.clientX, y: e.clientY, left: el.scrollLeft, top: el.scrollTop }
    el.setPointerCapture(e.pointerId)
  }
  const move = (e: PointerEvent) => {
    const el = scroller.current
    const d = drag.current
    if (!el || !d) return
    el.scrollLeft = d.left - (e.clientX - d.x)
    el.scrollTop = d.top - (e.clientY - d.y)
  }
  const up = () => (drag.current = null)

  return (
    <div className="tgraph">
      <div className="tgraph-bar">
        <p className="muted small tgraph-legend">
          {STATUSES.filter((s) => graph.nodes.some((n) => n.status === s)).map((s) => (
            <span key={s} className={`legend legend-${s}`}>
              {label(s)}
            </span>
          ))}
          {g.critical.length > 1 && <span className="legend legend-critical">Critical path: {g.critical.join(' → ')}</span>}
        </p>
        <div className="tgraph-zoom" role="group" aria-label="Zoom the task graph">
          <button type="button" className="btn btn-sm" aria-label="Zoom out" onClick={() => setZoom((z) => Math.max(0.4, z - 0.2))}>
            −
          </button>
          <button type="button" className="btn btn-sm" aria-label="Actual size" onClick={() => setZoom(1)}>
            {Math.round(zoom * 100)}%
          </button>
          <button type="button" className="btn btn-sm" aria-label="Zoom in" onClick={() => setZoom((z) => Math.min(2, z + 0.2))}>
            +
          </button>
        </div>
      </div>
      <div
        className="tgraph-scroll"
        ref={scroller}
        onPointerDown={down}
        onPointerMove={move}
        onPointerUp={up}
        onPointerCancel={up}
        data-testid="task-graph"
      >
        <svg
          width={g.width * zoom}
          height={g.height * zoom}
          viewBox={`0 0 ${g.width} ${g.height}`}
          role="group"
          aria-label={`Task graph: ${graph.nodes.length} tasks, ${graph.edges.length} dependencies`}
        >
          <defs>
            <marker id="tg-arrow" viewBox="0 0 8 8" refX="7" refY="4" markerWidth="8" markerHeight="8" markerUnits="userSpaceOnUse" orient="auto">
              <path d="M0,0 L8,4 L0,8 z" className="tedge-head" />
            </marker>
            <marker id="tg-arrow-crit" viewBox="0 0 8 8" refX="7" refY="4" markerWidth="8" markerHeight="8" markerUnits="userSpaceOnUse" orient="auto">
              <path d="M0,0 L8,4 L0,8 z" className="tedge-head crit" />
            </marker>
          </defs>
          {g.bands.map((b, i) => {
            const name = `${b.phase}: ${b.keys.length} ${b.keys.length === 1 ? 'task' : 'tasks'}, ${b.keys.join(', ')}`
            return (
              <g key={b.phase} className={`tband${i % 2 ? ' tband-odd' : ''}`} data-phase={b.phase} role="group" aria-label={name}>
                <title>{name}</title>
                <rect x={b.x} y={b.y} width={b.width} height={b.height} rx={8} />
                <text x={b.x + 10} y={b.y + 17} className="tband-label">
                  {clip(b.phase, Math.floor((b.width - 20) / 6.6))}
                </text>
              </g>
            )
          })}
          <g aria-hidden="true">
            {g.edges.map((e) => {
              const crit = g.criticalEdges.has(`${e.from}→${e.to}`)
              return (
                <path
                  key={`${e.from}→${e.to}`}
                  d={e.d}
                  className={crit ? 'tedge crit' : 'tedge'}
                  markerEnd={crit ? 'url(#tg-arrow-crit)' : 'url(#tg-arrow)'}
                  data-edge={`${e.from}→${e.to}`}
                />
              )
            })}
          </g>
          {g.nodes.map((n) => {
            const session = latest.get(n.key)
            const waits = graph.edges.filter((e) => e.to === n.key).map((e) => e.from)
            const name =
              `Task ${n.key}: ${n.title}, ${label(n.status)}` +
              (waits.length ? `, waits for ${waits.join(', ')}` : '') +
              (onPath.has(n.key) ? ', on the critical path' : '') +
              (session != null ? `; opens session ${session}` : '; no session yet')
            return (
              <g
                key={n.key}
                className={`gnode gnode-${n.status}${onPath.has(n.key) ? ' crit' : ''}${session != null ? ' has-session' : ''}`}
                data-key={n.key}
                data-status={n.status}
                transform={`translate(${n.x},${n.y})`}
                tabIndex={0}
                role="link"
                aria-label={name}
                aria-disabled={session == null || undefined}
                onClick={() => open(n)}
                onKeyDown={(e) => onKey(e, n)}
              >
                <title>{name}</title>
                <rect width={NODE_W} height={NODE_H} rx={7} />
                <text x={10} y={18} className="gnode-key">
                  {n.key} · {label(n.status)}
                </text>
                <text x={10} y={35} className="gnode-title">
                  {clip(n.title, 22)}
                </text>
              </g>
            )
          })}
        </svg>
      </div>
    </div>
  )
})

function clip(s: string, n: number): string {
  return s.length > n ? `${s.slice(0, n - 1)}…` : s
}
