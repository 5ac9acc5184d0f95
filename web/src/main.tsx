import { StrictMode } from 'react'
import { createRoot } from 'react-dom/client'
import { QueryClient, QueryClientProvider } from '@tanstack/react-query'
import { BrowserRouter } from 'react-router'
import { App } from './App'
import { LiveProvider } from './shared/ui/live-context'
import { ApiError } from './shared/api/client'
import { pendingPermissionsQuery, projectsQuery, tasksQuery } from './shared/api/queries'
import { prefetchImplementationRoute } from './features/task/prefetch'
import './styles.css'

const queryClient = new QueryClient({
  defaultOptions: {
    queries: {
      // Fresh until an event says otherwise: the WebSocket invalidates, nothing polls.
      staleTime: Infinity,
      refetchOnWindowFocus: false,
      retry: (count, err) => !(err instanceof ApiError && err.status >= 400 && err.status < 500) && count < 2,
    },
  },
})

// The board's data is asked for at once, alongside the session check, not after it.
if (location.pathname === '/') {
  void queryClient.prefetchQuery(tasksQuery)
  void queryClient.prefetchQuery(projectsQuery)
  void queryClient.prefetchQuery(pendingPermissionsQuery)
}
// So is a task's implementation tab's (its code, the task, its overview).
prefetchImplementationRoute(queryClient, location.pathname)

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <QueryClientProvider client={queryClient}>
      <BrowserRouter>
        <LiveProvider>
        <App />
        </LiveProvider>
      </BrowserRouter>
    </QueryClientProvider>
  </StrictMode>,
)
