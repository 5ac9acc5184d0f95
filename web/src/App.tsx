import { useEffect } from 'react'
import { Navigate, Route, Routes, useLocation, useNavigate } from 'react-router'
import { useQueryClient } from '@tanstack/react-query'
import { onUnauthorized } from './shared/api/client'
import { Layout } from './shared/ui/Layout'
import { SignInPage } from './features/signin/SignInPage'
import { BoardPage } from './features/board/BoardPage'
import { TaskPage } from './features/task/TaskPage'
import { ProjectsPage } from './features/projects/ProjectsPage'
import { ProjectPage } from './features/projects/ProjectPage'
import { TokensPage } from './features/tokens/TokensPage'
import { InboxPage } from './features/inbox/InboxPage'
import { WebhooksPage } from './features/webhooks/WebhooksPage'
import { ClusterPage } from './features/cluster/ClusterPage'
import { SessionRoute } from './features/session/route'
import { useLive } from './shared/ui/live-context'

export function App() {
  const navigate = useNavigate()
  const location = useLocation()
  const qc = useQueryClient()
  const live = useLive()

  useEffect(
    () =>
      onUnauthorized(() => {
        if (window.location.pathname === '/sign-in') return
        live.stop()
        qc.clear()
        const next = window.location.pathname + window.location.search
        navigate(`/sign-in?next=${encodeURIComponent(next)}`, { replace: true })
      }),
    [navigate, qc, live],
  )

  useEffect(() => {
    document.getElementById('main')?.focus({ preventScroll: true })
  }, [location.pathname])

  return (
    <Routes>
      <Route path="/sign-in" element={<SignInPage />} />
      <Route element={<Layout />}>
        <Route index element={<BoardPage />} />
        <Route path="tasks/:id/*" element={<TaskPage />} />
        <Route path="sessions/:id" element={<SessionRoute />} />
        <Route path="projects" element={<ProjectsPage />} />
        <Route path="projects/:id" element={<ProjectPage />} />
        <Route path="settings/tokens" element={<TokensPage />} />
        <Route path="settings/webhooks" element={<WebhooksPage />} />
        <Route path="settings/cluster" element={<ClusterPage />} />
        <Route path="inbox" element={<InboxPage />} />
        <Route path="settings" element={<Navigate to="/settings/tokens" replace />} />
        <Route path="*" element={<NotFound />} />
      </Route>
    </Routes>
  )
}

function NotFound() {
  return (
    <section className="page">
      <h1>Not found</h1>
      <p>
        There is no page here. <a href="/">Back to the board</a>.
      </p>
    </section>
  )
}
