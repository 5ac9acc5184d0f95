// While planning runs: the planning session's transcript, live (each transcript
// event refreshes it), so a person watches the agent write the spec.
import { useEffect, useRef } from 'react'
import { useQuery } from '@tanstack/react-query'
import { sessionsQuery, transcriptQuery } from '../../shared/api/queries'
import type { SpecTask, TranscriptEntry } from '../../shared/api/types'
import { label } from '../../shared/lib/format'

function entryText(e: TranscriptEntry): string {
  if (e.content) return e.content
  const d = e.data as Record<string, unknown>
  const title = d?.title ?? d?.toolCallId ?? d?.status
  return title ? String(title) : ''
}

export function PlanningProgress({ task }: { task: SpecTask }) {
  const sessions = useQuery(sessionsQuery(task.id))
  const planning = (sessions.data ?? []).filter((s) => s.kind === 'planning').at(-1)
  const transcript = useQuery({ ...transcriptQuery(planning?.id ?? 0), enabled: planning != null })
  const endRef = useRef<HTMLDivElement>(null)
  const entries = (transcript.data ?? []).filter((e) => e.kind !== 'usage')
  useEffect(() => {
    const box = endRef.current?.parentElement
    if (box) box.scrollTop = box.scrollHeight
  }, [entries.length])

  const queued = task.status === 'planning_queued'
  return (
    <section className="panel planning" aria-labelledby="planning-h" data-testid="planning-progress">
      <h2 id="planning-h">
        <span className="pulse" aria-hidden="true" />{' '}
        {queued ? 'Waiting for a planning slot (WIP limit)' : 'The agent is writing the spec'}
      </h2>
      {!planning ? (
        <p className="muted">{queued ? 'Planning starts when another task leaves planning.' : 'Starting the planning session…'}</p>
      ) : (
        <div className="transcript" aria-live="polite" aria-label="Planning transcript">
          {entries.length === 0 && <p className="muted">Session {planning.id} started; nothing said yet.</p>}
          {entries.map((e) =>
            e.kind === 'prompt' || e.kind === 'user_message' ? (
              <details key={e.id} className={`tr tr-${e.kind}`}>
                <summary>
                  <span className="tr-kind">{label(e.kind)}</span>
                  <span className="tr-text muted">{entryText(e).split('\n').length} lines sent to the agent</span>
                </summary>
                <pre className="tr-prompt">{entryText(e)}</pre>
              </details>
            ) : (
              <div key={e.id} className={`tr tr-${e.kind}`}>
                <span className="tr-kind">{label(e.kind)}</span>
                <span className="tr-text">{entryText(e)}</span>
              </div>
            ),
          )}
          <div ref={endRef} />
        </div>
      )}
    </section>
  )
}
