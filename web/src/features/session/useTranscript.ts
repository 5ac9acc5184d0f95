// The live transcript of one session: one GET for what exists, then, on each
// `transcript.appended` event for this session, one GET of the entries after the
// last id it has (appended; never a refetch of all). One request at a time: events
// arriving meanwhile make one more afterwards. Also catches up whenever the
// WebSocket (re)connects, so a gap while offline is filled.
import { useEffect, useState } from 'react'
import { api, unwrap } from '../../shared/api/client'
import { useLive } from '../../shared/ui/live-context'
import { TranscriptModel, type Row } from './transcript'

export interface TranscriptState {
  rows: Row[]
  /** Entries received (tool call updates are merged into their call's row). */
  count: number
  lastId: number
  loaded: boolean
  error: unknown
}

const EMPTY: TranscriptState = { rows: [], count: 0, lastId: 0, loaded: false, error: null }

export function useTranscript(sessionId: number): TranscriptState {
  const live = useLive()
  const [state, setState] = useState<TranscriptState>(EMPTY)

  useEffect(() => {
    const model = new TranscriptModel()
    let busy = false
    let again = false
    let dead = false
    setState(EMPTY)

    const pull = async () => {
      if (busy) {
        again = true
        return
      }
      busy = true
      try {
        do {
          again = false
          const more = await unwrap(
            api.GET('/api/v1/sessions/{id}/transcript', {
              params: { path: { id: sessionId }, query: { after: model.lastId } },
            }),
          )
          if (dead) return
          model.add(more)
          setState({ rows: model.rows, count: model.count, lastId: model.lastId, loaded: true, error: null })
        } while (again && !dead)
      } catch (error) {
        if (!dead) setState((s) => ({ ...s, loaded: true, error }))
      } finally {
        busy = false
      }
    }

    void pull()
    const offEvent = live.onEvent((e) => {
      if (e.entity !== 'transcript_entry') return
      const data = e.data as { work_session_id?: number } | null
      if (data?.work_session_id === sessionId && (e.entity_id ?? Infinity) > model.lastId) void pull()
    })
    let was = live.getSnapshot().state
    const offState = live.subscribe(() => {
      const now = live.getSnapshot().state
      if (now === 'live' && was !== 'live') void pull()
      was = now
    })
    return () => {
      dead = true
      offEvent()
      offState()
    }
  }, [sessionId, live])

  return state
}
