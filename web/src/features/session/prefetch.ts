// Started by the route (in the main bundle) while the page's own code is still
// loading: the session and the first transcript page, so they are not a waterfall
// after the chunk arrives.
import type { QueryClient } from '@tanstack/react-query'
import { api, unwrap } from '../../shared/api/client'
import type { TranscriptEntry } from '../../shared/api/types'
import { sessionQuery } from './api'

const firstPages = new Map<number, Promise<TranscriptEntry[]>>()
/** First pages that have arrived, by session: the page renders them at once. */
const arrived = new Map<number, TranscriptEntry[]>()

export function prefetchSession(qc: QueryClient, id: number): void {
  if (!Number.isInteger(id) || id <= 0) return
  void qc.prefetchQuery(sessionQuery(id))
  if (!firstPages.has(id)) {
    const p = unwrap(api.GET('/api/v1/sessions/{id}/transcript', { params: { path: { id }, query: { after: 0 } } }))
    p.then(
      (entries) => {
        if (firstPages.get(id) === p) arrived.set(id, entries)
      },
      () => firstPages.delete(id),
    )
    firstPages.set(id, p)
  }
}

/**
 * The prefetched first page of a session's transcript, once (then it is gone): the
 * entries if they have arrived, else the promise of them.
 */
export function takeFirstPage(id: number): TranscriptEntry[] | Promise<TranscriptEntry[]> | undefined {
  const p = firstPages.get(id)
  const done = arrived.get(id)
  firstPages.delete(id)
  arrived.delete(id)
  return done ?? p
}
