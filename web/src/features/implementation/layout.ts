// A layered layout of the plan's task graph (left to right: a task sits one column
// right of the latest task it waits for), with crossings reduced by a few barycenter
// sweeps, and the critical path: the longest chain of tasks not yet done. When the
// plan has spec-kit phases (barriers), each phase gets columns of its own, in phase
// order, and a band behind them with the phase's name.
import type { ImplStatus, TaskGraphView } from './types'

export const NODE_W = 168
export const NODE_H = 46
export const GAP_X = 56
export const GAP_Y = 14
export const PAD = 12
/** The room a phase band's label takes above the nodes. */
export const BAND_LABEL_H = 24
/** How far a phase band reaches into the gap beside its columns. */
export const BAND_PAD = 14
/** The height a long edge's waypoint takes in a column it crosses. */
const DUMMY_H = 6

export interface PlacedNode {
  key: string
  title: string
  status: ImplStatus
  layer: number
  x: number
  y: number
}

/** A phase's band: the columns its tasks sit in. */
export interface PhaseBand {
  phase: string
  /** The phase's tasks, in plan order. */
  keys: string[]
  x: number
  y: number
  width: number
  height: number
}

export interface PlacedEdge {
  from: string
  to: string
  /** An SVG path from the right side of `from` to the left side of `to`. */
  d: string
}

export interface GraphLayout {
  nodes: PlacedNode[]
  edges: PlacedEdge[]
  /** One per phase, in phase order; empty when no task has a phase. */
  bands: PhaseBand[]
  width: number
  height: number
  /** The keys on the critical path, in order. */
  critical: string[]
  /** `from→to` for each edge on the critical path. */
  criticalEdges: Set<string>
}

/** Finished tasks are off the critical path. */
const OFF_PATH: ReadonlySet<ImplStatus> = new Set(['done', 'skipped', 'cancelled'])

export function layout(graph: TaskGraphView): GraphLayout {
  const keys = graph.nodes.map((n) => n.key)
  const known = new Set(keys)
  const edges = graph.edges.filter((e) => known.has(e.from) && known.has(e.to) && e.from !== e.to)
  const preds = new Map<string, string[]>(keys.map((k) => [k, []]))
  const succs = new Map<string, string[]>(keys.map((k) => [k, []]))
  for (const e of edges) {
    preds.get(e.to)!.push(e.from)
    succs.get(e.from)!.push(e.to)
  }
  const order = topological(keys, preds, succs)

  // Phases, in the order the plan first names them.
  const phaseOf = new Map<string, string>()
  const phases: string[] = []
  for (const n of graph.nodes) {
    if (n.phase == null) continue
    phaseOf.set(n.key, n.phase)
    if (!phases.includes(n.phase)) phases.push(n.phase)
  }
  const phaseIndex = new Map(phases.map((p, i) => [p, i]))

  // Layer: the longest chain of predecessors. With phases, a phase starts one column
  // right of the last column of the phase before, so each has columns of its own
  // (tasks without a phase, such as spawned sessions, just follow what they wait for).
  const layerOf = new Map<string, number>()
  const place = (k: string, from: number) => {
    let l = from
    for (const p of preds.get(k)!) if (layerOf.has(p)) l = Math.max(l, layerOf.get(p)! + 1)
    layerOf.set(k, l)
  }
  let start = 0
  for (let i = 0; i < phases.length; i++) {
    let last = start
    for (const k of order) {
      if (phaseIndex.get(phaseOf.get(k)!) !== i) continue
      place(k, start)
      last = Math.max(last, layerOf.get(k)!)
    }
    start = last + 1
  }
  for (const k of order) if (!phaseOf.has(k)) place(k, 0)
  // A task without a phase placed before what it waits for (one of a later phase):
  // move it, and what waits for it, right until every edge points right.
  for (let moved = phases.length > 0, rounds = 0; moved && rounds < keys.length; rounds++) {
    moved = false
    for (const k of order) {
      const l = layerOf.get(k)!
      let want = l
      for (const p of preds.get(k)!) want = Math.max(want, layerOf.get(p)! + 1)
      if (want > l) {
        layerOf.set(k, want)
        moved = true
      }
    }
  }
  // Long edges pass through a waypoint in each column they cross, which takes part
  // in the ordering like a node (so edges bend around tasks, not through them).
  const layers: string[][] = []
  for (const k of keys) (layers[layerOf.get(k)!] ??= []).push(k)
  // A phase may end in a column nothing sits in only if the layering left a gap.
  for (let i = 0; i < layers.length; i++) layers[i] ??= []
  const direct = new Map([...preds].map(([k, v]) => [k, [...v]]))
  const chains = new Map<string, string[]>()
  let dummies = 0
  for (const e of edges) {
    const a = layerOf.get(e.from)!
    const b = layerOf.get(e.to)!
    let prev = e.from
    const via: string[] = []
    for (let l = a + 1; l < b; l++) {
      const d = `\u0000${dummies++}`
      via.push(d)
      layers[l]!.push(d)
      layerOf.set(d, l)
      preds.set(d, [prev])
      succs.set(d, [])
      succs.get(prev)!.push(d)
      prev = d
    }
    if (via.length) {
      // For the ordering, the edge is its chain of waypoints only.
      preds.set(e.to, [...preds.get(e.to)!.filter((p) => p !== e.from), prev])
      succs.set(e.from, succs.get(e.from)!.filter((s) => s !== e.to))
      succs.get(prev)!.push(e.to)
    }
    chains.set(`${e.from}→${e.to}`, via)
  }
  const isDummy = (k: string) => k.startsWith('\u0000')

  // Order inside a layer: plan order first, then barycenter sweeps down and up.
  const pos = new Map<string, number>()
  layers.forEach((l) => l.forEach((k, i) => pos.set(k, i)))
  const bary = (k: string, near: Map<string, string[]>) => {
    const ns = near.get(k)!
    return ns.length ? ns.reduce((a, n) => a + pos.get(n)!, 0) / ns.length : pos.get(k)!
  }
  for (let sweep = 0; sweep < 6; sweep++) {
    const down = sweep % 2 === 0
    const range = down ? layers.map((_, i) => i).slice(1) : layers.map((_, i) => i).reverse().slice(1)
    for (const i of range) {
      const near = down ? preds : succs
      const score = new Map(layers[i]!.map((k) => [k, bary(k, near)]))
      layers[i]!.sort((a, b) => score.get(a)! - score.get(b)! || pos.get(a)! - pos.get(b)!)
      layers[i]!.forEach((k, j) => pos.set(k, j))
    }
  }

  const size = (k: string) => (isDummy(k) ? DUMMY_H : NODE_H)
  const colHeight = (l: string[]) => l.reduce((a, k) => a + size(k), 0) + Math.max(0, l.length - 1) * GAP_Y
  // With phases, the bands' labels take a row above the nodes.
  const top = phases.length ? BAND_LABEL_H : 0
  // …and the first band reaches left of the first column.
  const left = phases.length ? BAND_PAD + PAD / 2 : PAD
  const height = top + PAD * 2 + Math.max(NODE_H, ...layers.map(colHeight))
  const byKey = new Map(graph.nodes.map((n) => [n.key, n]))
  const placed = new Map<string, PlacedNode>()
  const waypoint = new Map<string, { x: number; y: number }>()
  layers.forEach((l, li) => {
    // Centre each column vertically.
    let y = top + PAD + (height - top - PAD * 2 - colHeight(l)) / 2
    const x = left + li * (NODE_W + GAP_X)
    for (const k of l) {
      if (isDummy(k)) {
        waypoint.set(k, { x, y: y + DUMMY_H / 2 })
      } else {
        const n = byKey.get(k)!
        placed.set(k, { key: k, title: n.title, status: n.status, layer: li, x, y })
      }
      y += size(k) + GAP_Y
    }
  })
  const width = left * 2 + Math.max(1, layers.length) * NODE_W + Math.max(0, layers.length - 1) * GAP_X

  const bands: PhaseBand[] = phases.map((phase) => {
    const ks = keys.filter((k) => phaseOf.get(k) === phase)
    const ls = ks.map((k) => layerOf.get(k)!)
    const first = Math.min(...ls)
    const last = Math.max(...ls)
    const x = left + first * (NODE_W + GAP_X) - BAND_PAD
    return {
      phase,
      keys: ks,
      x,
      y: PAD / 2,
      width: (last - first + 1) * NODE_W + (last - first) * GAP_X + BAND_PAD * 2,
      height: height - PAD,
    }
  })

  const curve = (x1: number, y1: number, x2: number, y2: number) => {
    const mid = (x1 + x2) / 2
    return ` C${mid},${y1} ${mid},${y2} ${x2},${y2}`
  }
  const placedEdges = edges.map((e) => {
    const a = placed.get(e.from)!
    const b = placed.get(e.to)!
    let x = a.x + NODE_W
    let y = a.y + NODE_H / 2
    let d = `M${x},${y}`
    for (const w of chains.get(`${e.from}→${e.to}`)!) {
      const p = waypoint.get(w)!
      d += curve(x, y, p.x, p.y) + ` L${p.x + NODE_W},${p.y}`
      x = p.x + NODE_W
      y = p.y
    }
    d += curve(x, y, b.x, b.y + NODE_H / 2)
    return { from: e.from, to: e.to, d }
  })

  const critical = criticalPath(order, direct, (k) => !OFF_PATH.has(byKey.get(k)!.status))
  const criticalEdges = new Set<string>()
  for (let i = 1; i < critical.length; i++) criticalEdges.add(`${critical[i - 1]}→${critical[i]}`)

  return {
    nodes: keys.map((k) => placed.get(k)!),
    edges: placedEdges,
    bands,
    width,
    height,
    critical,
    criticalEdges,
  }
}

/** Kahn's order; whatever a cycle leaves over comes last in plan order. */
function topological(keys: string[], preds: Map<string, string[]>, succs: Map<string, string[]>): string[] {
  const indeg = new Map(keys.map((k) => [k, preds.get(k)!.length]))
  const queue = keys.filter((k) => indeg.get(k) === 0)
  const out: string[] = []
  const seen = new Set<string>()
  while (queue.length) {
    const k = queue.shift()!
    out.push(k)
    seen.add(k)
    for (const s of succs.get(k)!) {
      indeg.set(s, indeg.get(s)! - 1)
      if (indeg.get(s) === 0) queue.push(s)
    }
  }
  for (const k of keys) if (!seen.has(k)) out.push(k)
  return out
}

/** The longest chain (by count) of nodes for which `open` holds, edges followed forward. */
export function criticalPath(order: string[], preds: Map<string, string[]>, open: (k: string) => boolean): string[] {
  const len = new Map<string, number>()
  const prev = new Map<string, string | null>()
  let best: string | null = null
  for (const k of order) {
    if (!open(k)) continue
    let l = 1
    let p: string | null = null
    for (const q of preds.get(k)!) {
      const ql = len.get(q)
      if (ql != null && ql + 1 > l) {
        l = ql + 1
        p = q
      }
    }
    len.set(k, l)
    prev.set(k, p)
    if (best == null || l > len.get(best)!) best = k
  }
  const path: string[] = []
  for (let k: string | null = best; k != null; k = prev.get(k) ?? null) path.push(k)
  return path.reverse()
}
