// A small windowed list: only the rows in (and near) the viewport are in the DOM,
// each positioned at the sum of the heights before it. Heights start as an
// estimate and are measured with one ResizeObserver as rows render, so rows may be
// of any height. It follows the tail (new rows scroll into view) until the person
// scrolls up; then a "Jump to latest" button brings it back (so does End).
import { memo, useCallback, useEffect, useLayoutEffect, useMemo, useReducer, useRef, useState, type ReactNode } from 'react'

type Key = number | string

interface Props<T> {
  items: T[]
  itemKey: (item: T) => Key
  render: (item: T) => ReactNode
  /** A row's height before it is measured, in px. */
  estimate?: number
  label: string
  className?: string
}

const OVERSCAN_PX = 600
const STICK_PX = 24

export function VirtualList<T>({ items, itemKey, render, estimate = 56, label, className }: Props<T>) {
  const scroller = useRef<HTMLDivElement>(null)
  const heights = useRef(new Map<Key, number>())
  const [measured, remeasure] = useReducer((n: number) => n + 1, 0)
  const [scrollTop, setScrollTop] = useState(0)
  const [viewport, setViewport] = useState(600)
  const [follow, setFollowState] = useState(true)
  const followRef = useRef(true)
  const setFollow = (f: boolean) => {
    followRef.current = f
    setFollowState(f)
  }

  // Prefix sums of the heights: offsets[i] is where row i starts.
  const { offsets, index } = useMemo(() => {
    const offsets = new Float64Array(items.length + 1)
    const index = new Map<Key, number>()
    const h = heights.current
    for (let i = 0; i < items.length; i++) {
      const k = itemKey(items[i]!)
      index.set(k, i)
      offsets[i + 1] = offsets[i]! + (h.get(k) ?? estimate)
    }
    return { offsets, index }
    // `measured` changes when a height does.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [items, itemKey, estimate, measured])
  const total = offsets[items.length]!
  const layout = useRef({ offsets, index })
  layout.current = { offsets, index }

  const observer = useMemo(
    () =>
      typeof ResizeObserver === 'undefined'
        ? null
        : new ResizeObserver((records) => {
            let changed = false
            const el = scroller.current
            for (const r of records) {
              const node = r.target as HTMLElement
              const raw = node.dataset.rowKey
              if (raw === undefined) continue
              const key: Key = /^\d+$/.test(raw) ? Number(raw) : raw
              const h = r.borderBoxSize?.[0]?.blockSize ?? node.offsetHeight
              const before = heights.current.get(key) ?? estimate
              if (Math.abs(before - h) < 0.5) continue
              heights.current.set(key, h)
              changed = true
              // A row above the viewport changed: keep what the person reads in place.
              const i = layout.current.index.get(key)
              if (el && !followRef.current && i !== undefined && layout.current.offsets[i]! < el.scrollTop) {
                el.scrollTop += h - before
              }
            }
            if (changed) remeasure()
          }),
    [estimate],
  )
  useEffect(() => () => observer?.disconnect(), [observer])

  const observe = useCallback(
    (node: HTMLDivElement | null) => {
      if (!node || !observer) return
      observer.observe(node)
      return () => observer.unobserve(node)
    },
    [observer],
  )

  useLayoutEffect(() => {
    const el = scroller.current
    if (!el) return
    setViewport(el.clientHeight)
    const ro = typeof ResizeObserver === 'undefined' ? null : new ResizeObserver(() => setViewport(el.clientHeight))
    ro?.observe(el)
    return () => ro?.disconnect()
  }, [])

  // Following: after every render that changed the size, stay at the bottom.
  useLayoutEffect(() => {
    const el = scroller.current
    if (el && followRef.current) el.scrollTop = el.scrollHeight
  }, [total, viewport, follow])

  const onScroll = () => {
    const el = scroller.current
    if (!el) return
    setScrollTop(el.scrollTop)
    const atBottom = el.scrollHeight - el.scrollTop - el.clientHeight < STICK_PX
    if (atBottom !== followRef.current) setFollow(atBottom)
  }

  // The window: while following, the bottom of the list.
  const top = follow ? Math.max(0, total - viewport) : scrollTop
  const first = Math.max(0, upperBound(offsets, top - OVERSCAN_PX) - 1)
  let last = first
  while (last < items.length && offsets[last]! < top + viewport + OVERSCAN_PX) last++

  const rows: ReactNode[] = []
  for (let i = first; i < last; i++) {
    const item = items[i]!
    const k = itemKey(item)
    rows.push(<VRow key={k} rowKey={k} top={offsets[i]!} item={item} render={render} observe={observe} />)
  }

  return (
    <div className={`vlist-wrap ${className ?? ''}`}>
      <div
        ref={scroller}
        className="vlist"
        role="log"
        aria-label={label}
        tabIndex={0}
        onScroll={onScroll}
        data-rows={items.length}
        data-following={follow ? 'yes' : 'no'}
      >
        <div className="vlist-inner" style={{ height: total }}>
          {rows}
        </div>
      </div>
      {!follow && (
        <button
          type="button"
          className="btn btn-sm btn-primary vlist-jump"
          onClick={() => {
            setFollow(true)
            const el = scroller.current
            if (el) el.scrollTop = el.scrollHeight
          }}
        >
          ↓ Jump to latest
        </button>
      )}
    </div>
  )
}

/** The first i with offsets[i] > x. */
function upperBound(offsets: Float64Array, x: number): number {
  let lo = 0
  let hi = offsets.length
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if (offsets[mid]! > x) hi = mid
    else lo = mid + 1
  }
  return lo
}

interface RowProps<T> {
  rowKey: Key
  top: number
  item: T
  render: (item: T) => ReactNode
  observe: (node: HTMLDivElement | null) => void | (() => void)
}

function VRowInner<T>({ rowKey, top, item, render, observe }: RowProps<T>) {
  const body = useMemo(() => render(item), [render, item])
  return (
    <div ref={observe} className="vrow" data-row-key={rowKey} style={{ transform: `translateY(${top}px)` }}>
      {body}
    </div>
  )
}

const VRow = memo(VRowInner) as typeof VRowInner
