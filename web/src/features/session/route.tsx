// The session page's route: loaded on first use (it brings markdown and highlighting).
import { lazy, Suspense } from 'react'
import { Loading } from '../../shared/ui/bits'

const SessionPage = lazy(() => import('./SessionPage').then((m) => ({ default: m.SessionPage })))

export function SessionRoute() {
  return (
    <Suspense fallback={<section className="page"><Loading what="the session" /></section>}>
      <SessionPage />
    </Suspense>
  )
}
