// The session page's route: its code is loaded on first use (it brings markdown and
// highlighting), and meanwhile the session and its transcript are already asked for.
// Not React.lazy: a Suspense boundary that showed its fallback reveals the content
// no sooner than 300 ms later (React's throttle), so the module is awaited in state.
import { useEffect, useState, type ComponentType } from 'react'
import { useParams } from 'react-router'
import { useQueryClient } from '@tanstack/react-query'
import { ErrorNote, Loading } from '../../shared/ui/bits'
import { prefetchSession } from './prefetch'

let loaded: ComponentType | null = null
let loading: Promise<ComponentType> | null = null
const load = () =>
  (loading ??= import('./SessionPage').then((m) => (loaded = m.SessionPage)).catch((err: unknown) => {
    loading = null
    throw err
  }))

export function SessionRoute() {
  const id = Number(useParams().id)
  const qc = useQueryClient()
  const [started, setStarted] = useState(0)
  const [Page, setPage] = useState<ComponentType | null>(() => loaded)
  const [error, setError] = useState<unknown>(null)
  if (started !== id) {
    // During render, so the requests leave with the chunk's.
    prefetchSession(qc, id)
    setStarted(id)
  }
  useEffect(() => {
    if (Page) return
    load().then(
      (p) => setPage(() => p),
      (err: unknown) => setError(err),
    )
  }, [Page])
  if (error) return <section className="page"><ErrorNote error={error} title="The session page did not load" /></section>
  if (!Page) return <section className="page"><Loading what="the session" /></section>
  return <Page />
}
