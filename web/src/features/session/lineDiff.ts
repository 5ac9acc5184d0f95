// A line diff of two texts (Myers' O((N+M)·D) algorithm after trimming the common
// head and tail), grouped into hunks with a few lines of context, for the diffs of
// ACP tool calls (`{type: "diff", path, oldText, newText}`).

export interface DiffLine {
  kind: 'add' | 'del' | 'ctx' | 'hunk'
  text: string
  old?: number
  new?: number
}

export interface LineDiff {
  lines: DiffLine[]
  added: number
  removed: number
}

/** Past this many differing lines the diff is shown as everything removed, then added. */
const MAX_EDITS = 1500
const CONTEXT = 3

function splitLines(text: string): string[] {
  if (text === '') return []
  const lines = text.split('\n')
  if (lines.at(-1) === '') lines.pop()
  return lines
}

type Op = ['=' | '-' | '+', string]

function myers(a: string[], b: string[]): Op[] | null {
  const n = a.length
  const m = b.length
  const max = n + m
  const v = new Int32Array(2 * max + 3)
  // trace[d] holds v (for k in -d-1..d+1) as it was before step d.
  const trace: Int32Array[] = []
  const at = (t: Int32Array, d: number, k: number) => t[k + d + 1]!
  for (let d = 0; d <= Math.min(max, MAX_EDITS); d++) {
    trace.push(v.slice(max - d, max + d + 3))
    for (let k = -d; k <= d; k += 2) {
      const down = k === -d || (k !== d && v[max + 1 + k - 1]! < v[max + 1 + k + 1]!)
      let x = down ? v[max + 1 + k + 1]! : v[max + 1 + k - 1]! + 1
      let y = x - k
      while (x < n && y < m && a[x] === b[y]) {
        x++
        y++
      }
      v[max + 1 + k] = x
      if (x >= n && y >= m) return backtrack(trace, at, a, b, d)
    }
  }
  return null
}

function backtrack(
  trace: Int32Array[],
  at: (t: Int32Array, d: number, k: number) => number,
  a: string[],
  b: string[],
  dEnd: number,
): Op[] {
  const ops: Op[] = []
  let x = a.length
  let y = b.length
  for (let d = dEnd; d > 0; d--) {
    const t = trace[d]!
    const k = x - y
    const down = k === -d || (k !== d && at(t, d, k - 1) < at(t, d, k + 1))
    const prevK = down ? k + 1 : k - 1
    const prevX = at(t, d, prevK)
    const prevY = prevX - prevK
    while (x > prevX && y > prevY) {
      ops.push(['=', a[--x]!])
      y--
    }
    if (down) ops.push(['+', b[--y]!])
    else ops.push(['-', a[--x]!])
  }
  while (x > 0 && y > 0) {
    ops.push(['=', a[--x]!])
    y--
  }
  return ops.reverse()
}

export function diffLines(oldText: string | null | undefined, newText: string): LineDiff {
  const a = splitLines(oldText ?? '')
  const b = splitLines(newText)
  let head = 0
  while (head < a.length && head < b.length && a[head] === b[head]) head++
  let tail = 0
  while (tail < a.length - head && tail < b.length - head && a[a.length - 1 - tail] === b[b.length - 1 - tail]) tail++
  const midA = a.slice(head, a.length - tail)
  const midB = b.slice(head, b.length - tail)
  const mid = myers(midA, midB) ?? [...midA.map((t): Op => ['-', t]), ...midB.map((t): Op => ['+', t])]
  const ops: Op[] = [
    ...a.slice(0, head).map((t): Op => ['=', t]),
    ...mid,
    ...a.slice(a.length - tail).map((t): Op => ['=', t]),
  ]
  return hunks(ops)
}

function hunks(ops: Op[]): LineDiff {
  // Number every line, then keep the changes and CONTEXT lines around them.
  const all: DiffLine[] = []
  let o = 1
  let n = 1
  let added = 0
  let removed = 0
  for (const [op, text] of ops) {
    if (op === '=') all.push({ kind: 'ctx', text, old: o++, new: n++ })
    else if (op === '-') {
      all.push({ kind: 'del', text, old: o++ })
      removed++
    } else {
      all.push({ kind: 'add', text, new: n++ })
      added++
    }
  }
  const keep = new Uint8Array(all.length)
  all.forEach((l, i) => {
    if (l.kind === 'ctx') return
    for (let j = Math.max(0, i - CONTEXT); j <= Math.min(all.length - 1, i + CONTEXT); j++) keep[j] = 1
  })
  const lines: DiffLine[] = []
  let skipped = 0
  for (let i = 0; i < all.length; i++) {
    if (!keep[i]) {
      skipped++
      continue
    }
    if (skipped > 0) lines.push({ kind: 'hunk', text: `⋯ ${skipped} unchanged line${skipped === 1 ? '' : 's'}` })
    skipped = 0
    lines.push(all[i]!)
  }
  if (skipped > 0) lines.push({ kind: 'hunk', text: `⋯ ${skipped} unchanged line${skipped === 1 ? '' : 's'}` })
  return { lines, added, removed }
}
