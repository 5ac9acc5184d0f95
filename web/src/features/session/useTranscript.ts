// The live transcript of one session: one GET for what exists, then, on each
// `transcript.appended` event for this session, one GET of the entries after the
// last id it has (appended; never a refetch of all). One request at a time: events
// arriving meanwhile make one more afterwards. Also catches up whenever the
// WebSocket (re)connects, so a gap while offline is filled.
import { useEffect, useState } from 'react'
import { api, unwrap } from '../../shared/api/client'
import { useLive } from '../../shared/ui/live-context'
import type { TranscriptEntry } from '../../shared/api/types'
import { TranscriptModel, type Row } from './transcript'
import { takeFirstPage } from './prefetch'

export interface TranscriptState {
  rows: Row[]
  /** Entries received (tool call updates are merged into their call's row). */
  count: number
  lastId: number
  loaded: boolean
  error: unknown
}

const EMPTY: TranscriptState = { rows: [], count: 0, lastId: 0, loaded: false, error: null }

/** A model of what has arrived so far, if the route's prefetch brought it already. */
function seed(sessionId: number): { model: TranscriptModel; first: Promise<TranscriptEntry[]> | undefined } {
  const model = new TranscriptModel()
  const first = takeFirstPage(sessionId)
  if (Array.isArray(first)) {
    performance.mark('spectask:transcript-loaded')
    model.add(first)
    return { model, first: undefined }
  }
  return { model, first }
}

function snapshot(model: TranscriptModel, loaded: boolean): TranscriptState {
  return { rows: model.rows, count: model.count, lastId: model.lastId, loaded, error: null }
}

export function useTranscript(sessionId: number): TranscriptState {
  const live = useLive()
  // The first render already shows what the prefetch brought, when it is here.
  const [seeded] = useState(() => (sessionId > 0 ? { id: sessionId, ...seed(sessionId) } : null))
  const [state, setState] = useState<TranscriptState>(() =>
    seeded && seeded.model.lastId > 0 ? snapshot(seeded.model, true) : EMPTY,
  )

  useEffect(() => {
    if (!(sessionId > 0)) return
    let { model, first } = seeded?.id === sessionId ? seeded : seed(sessionId)
    if (seeded?.id === sessionId) seeded.id = 0 // used once
    let busy = false
    let again = false
    let dead = false
    /** The newest entry id an event announced: a pull goes on until it has it. */
    let wanted = 0
    /** Set on (re)connecting: one more pull whatever the events said. */
    let force = false
    setState(model.lastId > 0 ? snapshot(model, true) : EMPTY)

    const pull = async () => {
      if (busy) {
        again = true
        return
      }
      busy = true
      try {
        do {
          again = false
          force = false
          const prefetched = first
          first = undefined
          const more = await (prefetched ??
            unwrap(
              api.GET('/api/v1/sessions/{id}/transcript', {
                params: { path: { id: sessionId }, query: { after: model.lastId } },
              }),
            ))
          if (dead) return
          if (model.lastId === 0) performance.mark('spectask:transcript-loaded')
          model.add(more)
          setState(snapshot(model, true))
          // Events that came meanwhile for entries this answer already held need nothing more.
        } while (!dead && again && (force || wanted > model.lastId))
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
      if (data?.work_session_id !== sessionId) return
      if (e.entity_id == null) force = true
      else if (e.entity_id > model.lastId) wanted = Math.max(wanted, e.entity_id)
      else return
      void pull()
    })
    let was = live.getSnapshot().state
    const offState = live.subscribe(() => {
      const now = live.getSnapshot().state
      // (Re)connected: whatever was appended while offline is fetched once.
      if (now === 'live' && was !== 'live') {
        force = true
        void pull()
      }
      was = now
    })
    return () => {
      dead = true
      offEvent()
      offState()
    }
    // `seeded` is the first render's, used once.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [sessionId, live])

  return state
}
