// The unified diff the server gives between a version and the one before it, as a
// table per file with old and new line numbers.
import { useMemo } from 'react'

interface Line {
  kind: 'add' | 'del' | 'ctx' | 'hunk' | 'meta'
  text: string
  old?: number
  new?: number
}

interface FileDiff {
  name: string
  lines: Line[]
  added: number
  removed: number
}

export function parseUnifiedDiff(diff: string): FileDiff[] {
  const files: FileDiff[] = []
  let cur: FileDiff | null = null
  let oldNo = 0
  let newNo = 0
  for (const text of diff.split('\n')) {
    if (text.startsWith('diff --git')) {
      const m = / b\/(.+)$/.exec(text)
      cur = { name: m?.[1] ?? text.slice(11), lines: [], added: 0, removed: 0 }
      files.push(cur)
      continue
    }
    if (!cur) {
      cur = { name: 'spec', lines: [], added: 0, removed: 0 }
      files.push(cur)
    }
    if (text.startsWith('+++') || text.startsWith('---')) {
      if (text.startsWith('+++ b/')) cur.name = text.slice(6)
      continue
    }
    if (text.startsWith('@@')) {
      const m = /@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@(.*)/.exec(text)
      oldNo = Number(m?.[1] ?? 1)
      newNo = Number(m?.[2] ?? 1)
      cur.lines.push({ kind: 'hunk', text })
    } else if (text.startsWith('+')) {
      cur.lines.push({ kind: 'add', text: text.slice(1), new: newNo++ })
      cur.added++
    } else if (text.startsWith('-')) {
      cur.lines.push({ kind: 'del', text: text.slice(1), old: oldNo++ })
      cur.removed++
    } else if (text.startsWith(' ')) {
      cur.lines.push({ kind: 'ctx', text: text.slice(1), old: oldNo++, new: newNo++ })
    } else if (text.startsWith('\\') || /^(new file|deleted file|similarity|rename)/.test(text)) {
      cur.lines.push({ kind: 'meta', text })
    }
  }
  return files.filter((f) => f.lines.length > 0)
}

export function DiffView({ diff, from, to }: { diff: string | null | undefined; from: number; to: number }) {
  const files = useMemo(() => parseUnifiedDiff(diff ?? ''), [diff])
  if (!diff) return <p className="muted">Version {to} is the first: there is nothing to compare it with.</p>
  if (files.length === 0) return <p className="muted">No changes between version {from} and version {to}.</p>
  return (
    <div className="diff" aria-label={`Changes from version ${from} to version ${to}`}>
      {files.map((f) => (
        <section key={f.name} className="diff-file">
          <h3 className="diff-name">
            <code>{f.name}</code>{' '}
            <span className="diff-stat">
              <span className="add">+{f.added}</span> <span className="del">−{f.removed}</span>
            </span>
          </h3>
          <div className="diff-scroll">
            <table className="diff-table">
              <tbody>
                {f.lines.map((l, i) => (
                  <tr key={i} className={`dl dl-${l.kind}`}>
                    <td className="ln" aria-hidden="true">{l.old ?? ''}</td>
                    <td className="ln" aria-hidden="true">{l.new ?? ''}</td>
                    <td className="dsign" aria-hidden="true">
                      {l.kind === 'add' ? '+' : l.kind === 'del' ? '−' : ''}
                    </td>
                    <td className="dtext">
                      {l.kind === 'add' && <span className="visually-hidden">added: </span>}
                      {l.kind === 'del' && <span className="visually-hidden">removed: </span>}
                      {l.text || '\u00a0'}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </section>
      ))}
    </div>
  )
}
