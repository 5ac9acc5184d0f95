// The validation report of a spec version: errors, warnings, each acceptance
// criterion's EARS pattern, and the requirement → task coverage matrix.
import type { SpecReport } from '../../shared/api/types'

type Finding = SpecReport['errors'][number]

const PATTERN_LABEL: Record<string, string> = {
  ubiquitous: 'Ubiquitous',
  event_driven: 'Event-driven',
  state_driven: 'State-driven',
  unwanted_behaviour: 'Unwanted behaviour',
  optional_feature: 'Optional feature',
  complex: 'Complex',
  gherkin: 'Gherkin',
  not_ears: 'Not EARS',
}

function FindingList({ items, kind, onJump }: { items: Finding[]; kind: 'error' | 'warning'; onJump: (doc: string, line?: number | null) => void }) {
  return (
    <ul className={`findings findings-${kind}`}>
      {items.map((f, i) => (
        <li key={i}>
          <button type="button" className="link-btn" onClick={() => onJump(f.document, f.line)}>
            {f.document}
            {f.line ? `:${f.line}` : ''}
          </button>{' '}
          {f.message}
        </li>
      ))}
    </ul>
  )
}

export function ReportPanel({ report, onJump }: { report: SpecReport; onJump: (doc: string, line?: number | null) => void }) {
  const criteria = report.requirements.flatMap((r) => r.criteria)
  const byPattern = new Map<string, number>()
  for (const c of criteria) byPattern.set(c.pattern, (byPattern.get(c.pattern) ?? 0) + 1)
  const keys = report.tasks.map((t) => t.key)
  const coverage = new Map(report.coverage.map((c) => [c.requirement, new Set(c.tasks)]))
  const uncovered = report.requirements.filter((r) => (coverage.get(r.id)?.size ?? 0) === 0)
  return (
    <div className="report">
      <section className="panel" aria-labelledby="rep-summary">
        <h2 id="rep-summary">Validation</h2>
        <p className={report.errors.length ? 'verdict verdict-bad' : 'verdict verdict-ok'} data-testid="validation-verdict">
          {report.errors.length
            ? `${report.errors.length} error${report.errors.length > 1 ? 's' : ''}: this version cannot be approved`
            : 'Valid: no errors'}
          {report.warnings.length ? ` · ${report.warnings.length} warning${report.warnings.length > 1 ? 's' : ''}` : ''}
        </p>
        {report.errors.length > 0 && (
          <>
            <h3>Errors</h3>
            <FindingList items={report.errors} kind="error" onJump={onJump} />
          </>
        )}
        {report.warnings.length > 0 && (
          <details open={report.warnings.length <= 5}>
            <summary>Warnings ({report.warnings.length})</summary>
            <FindingList items={report.warnings} kind="warning" onJump={onJump} />
          </details>
        )}
        <p className="muted small">
          {report.requirements.length} requirements · {criteria.length} acceptance criteria · {report.tasks.length} tasks
        </p>
      </section>

      <section className="panel" aria-labelledby="rep-ears">
        <h2 id="rep-ears">EARS classification</h2>
        {criteria.length === 0 ? (
          <p className="muted">No acceptance criteria found.</p>
        ) : (
          <>
            <ul className="pattern-summary">
              {[...byPattern.entries()].map(([p, n]) => (
                <li key={p} className={`ears ears-${p}`}>
                  {PATTERN_LABEL[p] ?? p}: {n}
                </li>
              ))}
            </ul>
            <details>
              <summary>Every criterion</summary>
              <div className="table-scroll">
                <table className="ears-table">
                  <thead>
                    <tr>
                      <th scope="col">Criterion</th>
                      <th scope="col">Pattern</th>
                      <th scope="col">Text</th>
                    </tr>
                  </thead>
                  <tbody>
                    {report.requirements.flatMap((r) =>
                      r.criteria.map((c) => (
                        <tr key={`${r.id}-${c.id}`}>
                          <td>
                            <button type="button" className="link-btn" onClick={() => onJump('requirements.md', c.line)}>
                              {c.id}
                            </button>
                          </td>
                          <td>
                            <span className={`ears ears-${c.pattern}`}>{PATTERN_LABEL[c.pattern] ?? c.pattern}</span>
                          </td>
                          <td>{c.text}</td>
                        </tr>
                      )),
                    )}
                  </tbody>
                </table>
              </div>
            </details>
          </>
        )}
      </section>

      <section className="panel" aria-labelledby="rep-cov">
        <h2 id="rep-cov">Coverage: requirement → tasks</h2>
        {report.requirements.length === 0 ? (
          <p className="muted">No requirements found.</p>
        ) : (
          <>
            {uncovered.length > 0 && (
              <p className="note note-warn">
                Not covered by any task: {uncovered.map((r) => r.id).join(', ')}
              </p>
            )}
            <div className="table-scroll">
              <table className="matrix">
                <thead>
                  <tr>
                    <th scope="col">Requirement</th>
                    {keys.map((k) => (
                      <th key={k} scope="col" className="matrix-task" title={report.tasks.find((t) => t.key === k)?.title}>
                        {k}
                      </th>
                    ))}
                  </tr>
                </thead>
                <tbody>
                  {report.requirements.map((r) => {
                    const tasks = coverage.get(r.id) ?? new Set<string>()
                    return (
                      <tr key={r.id} className={tasks.size === 0 ? 'uncovered' : ''}>
                        <th scope="row" title={r.title}>
                          <span className="req-id">{r.id}</span> <span className="req-title">{r.title}</span>
                        </th>
                        {keys.map((k) => (
                          <td key={k} className={tasks.has(k) ? 'hit' : ''}>
                            {tasks.has(k) ? <span aria-label={`${r.id} covered by task ${k}`}>●</span> : <span className="visually-hidden">not covered by {k}</span>}
                          </td>
                        ))}
                      </tr>
                    )
                  })}
                </tbody>
              </table>
            </div>
          </>
        )}
      </section>
    </div>
  )
}
