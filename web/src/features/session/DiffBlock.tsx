// An ACP diff (`{path, oldText, newText}`) as a line diff table, in the spec diff's
// styles (old and new line numbers, + and −).
import { useMemo } from 'react'
import { diffLines } from './lineDiff'

export function DiffBlock({ path, oldText, newText }: { path: string; oldText?: string | null; newText: string }) {
  const d = useMemo(() => diffLines(oldText, newText), [oldText, newText])
  const isNew = oldText == null
  return (
    <section className="diff-file tool-diff" aria-label={`Diff of ${path}`}>
      <h4 className="diff-name">
        <code>{path}</code> {isNew && <span className="badge">new file</span>}{' '}
        <span className="diff-stat">
          <span className="add">+{d.added}</span> <span className="del">−{d.removed}</span>
        </span>
      </h4>
      {d.added + d.removed === 0 ? (
        <p className="muted small">No change to the text.</p>
      ) : (
        <div className="diff-scroll tool-diff-scroll">
          <table className="diff-table">
            <tbody>
              {d.lines.map((l, i) => (
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
      )}
    </section>
  )
}
