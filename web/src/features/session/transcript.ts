// The transcript as rows: entries in order, with each tool call's updates merged
// into it (by toolCallId, later fields replacing earlier ones, as ACP says). Built
// incrementally: entries only ever arrive after the last one.
import type { TranscriptEntry } from '../../shared/api/types'

/** ACP tool call content: text, a diff, or a terminal. */
export type ToolContent =
  | { type: 'content'; content?: { type?: string; text?: string } }
  | { type: 'diff'; path: string; oldText?: string | null; newText: string }
  | { type: 'terminal'; terminalId: string }

export interface ToolCall {
  toolCallId: string
  title?: string
  kind?: string
  status?: string
  content?: ToolContent[]
  locations?: { path: string; line?: number | null }[]
  rawInput?: unknown
  rawOutput?: unknown
}

export type Row =
  | { type: 'entry'; key: number; entry: TranscriptEntry }
  | { type: 'tool'; key: number; call: ToolCall; entries: number; at: string }

export class TranscriptModel {
  rows: Row[] = []
  count = 0
  lastId = 0
  private tools = new Map<string, number>()

  /** Appends entries (ids above lastId only); returns whether anything changed. */
  add(entries: TranscriptEntry[]): boolean {
    let changed = false
    // A new array each time (React compares by reference); the old one is untouched.
    if (entries.length > 0) this.rows = this.rows.slice()
    for (const e of entries) {
      if (e.id <= this.lastId) continue
      this.lastId = e.id
      this.count++
      changed = true
      if (e.kind === 'tool_call' || e.kind === 'tool_call_update') {
        const data = (e.data ?? {}) as Partial<ToolCall> & Record<string, unknown>
        const id = String(data.toolCallId ?? e.content)
        const at = this.tools.get(id)
        const prev = at === undefined ? undefined : this.rows[at]
        if (prev?.type === 'tool' && e.kind === 'tool_call_update') {
          this.rows[at!] = { ...prev, call: merge(prev.call, data), entries: prev.entries + 1 }
          continue
        }
        this.tools.set(id, this.rows.length)
        this.rows.push({ type: 'tool', key: e.id, call: merge({ toolCallId: id }, data), entries: 1, at: e.created_at })
        continue
      }
      this.rows.push({ type: 'entry', key: e.id, entry: e })
    }
    return changed
  }
}

function merge(call: ToolCall, update: Record<string, unknown>): ToolCall {
  const next: Record<string, unknown> = { ...call }
  for (const [k, v] of Object.entries(update)) {
    if (k === 'sessionUpdate' || v === undefined || v === null) continue
    next[k] = v
  }
  return next as unknown as ToolCall
}
