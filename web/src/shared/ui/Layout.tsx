import { createContext, useCallback, useContext, useEffect, useState } from 'react'
import { Navigate, NavLink, Outlet, useLocation, useNavigate } from 'react-router'
import { useQuery, useQueryClient } from '@tanstack/react-query'
import { getSession, signOut } from '../api/auth'
import { ApiError, errorMessage } from '../api/client'
import { keys } from '../api/queries'
import { setTheme, useTheme, type Theme } from '../lib/theme'
import { SHORTCUTS, useShortcut } from '../lib/shortcuts'
import { useLive, useLiveState } from './live-context'
import { Dialog } from './Dialog'
import { Toasts, toast } from './toast'
import { MoonIcon, PlusIcon, SignOutIcon, SunIcon, SystemIcon } from './icons'
import { CreateTaskDialog } from '../../features/board/CreateTaskDialog'
import { InboxButton } from '../../features/inbox/InboxButton'

const CreateCtx = createContext<() => void>(() => {})
/** Opens the create-task dialog (also the `c` shortcut). */
export const useOpenCreate = () => useContext(CreateCtx)

export function Layout() {
  const location = useLocation()
  const session = useQuery({ queryKey: keys.session, queryFn: getSession, retry: false })
  const live = useLive()
  const signedIn = session.isSuccess
  const qc = useQueryClient()
  useEffect(() => {
    if (!signedIn) return
    // The first screen's data goes first; then the cursor and the WebSocket (whose
    // first catch-up refreshes whatever was read before the cursor).
    let started = false
    const start = () => {
      if (started) return
      started = true
      unsubscribe()
      clearTimeout(timer)
      void live.start()
    }
    const unsubscribe = qc.getQueryCache().subscribe(() => {
      if (qc.isFetching() === 0) start()
    })
    const timer = setTimeout(start, 1500)
    if (qc.isFetching() === 0) queueMicrotask(start)
    return () => {
      unsubscribe()
      clearTimeout(timer)
      live.stop()
    }
  }, [signedIn, live, qc])

  if (session.isError) {
    const err = session.error
    if (err instanceof ApiError && err.status === 401) {
      const next = location.pathname + location.search
      return <Navigate to={`/sign-in?next=${encodeURIComponent(next)}`} replace />
    }
    return (
      <div className="center-page">
        <div className="card-panel">
          <h1>spectask</h1>
          <p role="alert">The server could not be reached: {errorMessage(err)}</p>
          <button type="button" className="btn" onClick={() => session.refetch()}>
            Try again
          </button>
        </div>
      </div>
    )
  }
  if (!session.data) {
    return (
      <div className="center-page">
        <p className="muted" role="status">
          Loading…
        </p>
      </div>
    )
  }
  return <Shell tokenName={session.data.token_name} />
}

function Shell({ tokenName }: { tokenName: string }) {
  const navigate = useNavigate()
  const qc = useQueryClient()
  const live = useLive()
  const [creating, setCreating] = useState(false)
  const [help, setHelp] = useState(false)
  const openCreate = useCallback(() => setCreating(true), [])

  useShortcut('?', useCallback(() => setHelp(true), []))
  useShortcut('c', openCreate)
  useShortcut('g b', useCallback(() => navigate('/'), [navigate]))
  useShortcut('g p', useCallback(() => navigate('/projects'), [navigate]))
  useShortcut('g t', useCallback(() => navigate('/settings/tokens'), [navigate]))
  useShortcut('g i', useCallback(() => navigate('/inbox'), [navigate]))
  useShortcut('g w', useCallback(() => navigate('/settings/webhooks'), [navigate]))
  // On other pages `/` goes to the board's search (the board binds it itself).
  const onBoard = useLocation().pathname === '/'
  useShortcut(
    '/',
    useCallback(() => {
      navigate('/')
      const until = Date.now() + 2000
      const focus = () => {
        const el = document.getElementById('board-search')
        if (el) el.focus()
        else if (Date.now() < until) requestAnimationFrame(focus)
      }
      requestAnimationFrame(focus)
    }, [navigate]),
    !onBoard,
  )

  const doSignOut = async () => {
    try {
      await signOut()
    } catch (err) {
      toast('error', `Sign-out failed: ${errorMessage(err)}`)
      return
    }
    live.stop()
    qc.clear()
    navigate('/sign-in?signed_out=1', { replace: true })
  }

  return (
    <CreateCtx.Provider value={openCreate}>
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <NavLink to="/" className="brand" aria-label="spectask board">
          <span className="brand-mark" aria-hidden="true" />
          <span className="brand-name">spectask</span>
        </NavLink>
        <nav className="topnav" aria-label="Main">
          <NavLink to="/" end>
            Board
          </NavLink>
          <NavLink to="/projects">Projects</NavLink>
          <NavLink to="/settings/tokens">Tokens</NavLink>
        </nav>
        <div className="topbar-end">
          <LiveIndicator />
          <InboxButton />
          <button type="button" className="btn btn-primary btn-sm" onClick={openCreate} aria-keyshortcuts="c" aria-label="New task" title="New task (c)">
            <span className="new-task-text">New task</span>
            <span className="new-task-icon" aria-hidden="true">
              <PlusIcon />
            </span>
          </button>
          <ThemeToggle />
          <button
            type="button"
            className="icon-btn help-btn"
            aria-label="Keyboard shortcuts"
            aria-keyshortcuts="?"
            title="Keyboard shortcuts (?)"
            onClick={() => setHelp(true)}
          >
            ?
          </button>
          <button type="button" className="btn btn-ghost btn-sm sign-out" onClick={doSignOut} title={`Signed in as ${tokenName}`} aria-label="Sign out">
            <span className="sign-out-text">Sign out</span>
            <span className="sign-out-icon" aria-hidden="true">
              <SignOutIcon />
            </span>
          </button>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        <Outlet />
      </main>
      <CreateTaskDialog open={creating} onClose={() => setCreating(false)} />
      <Dialog open={help} title="Keyboard shortcuts" onClose={() => setHelp(false)}>
        <dl className="shortcuts">
          {SHORTCUTS.map((s) => (
            <div key={s.keys} className="shortcut-row">
              <dt>
                {s.keys.split(' ').map((k, i) =>
                  k === '/' && s.keys.includes(' / ') ? (
                    <span key={i}> / </span>
                  ) : (
                    <kbd key={i}>{k}</kbd>
                  ),
                )}
              </dt>
              <dd>{s.description}</dd>
            </div>
          ))}
        </dl>
      </Dialog>
      <Toasts />
    </CreateCtx.Provider>
  )
}

function LiveIndicator() {
  const s = useLiveState()
  const text = s.state === 'live' ? 'Live' : s.state === 'connecting' ? 'Connecting…' : 'Offline — reconnecting'
  return (
    <span
      className={`live live-${s.state}`}
      role="status"
      aria-live="polite"
      title={s.state === 'offline' && s.reason ? `${text} (${s.reason})` : `${text}; last event #${s.lastId}`}
      data-live={s.state}
    >
      <span className="live-dot" aria-hidden="true" />
      <span className="live-text">{text}</span>
    </span>
  )
}

const NEXT_THEME: Record<Theme, Theme> = { system: 'light', light: 'dark', dark: 'system' }
const THEME_ICON: Record<Theme, () => React.JSX.Element> = { system: SystemIcon, light: SunIcon, dark: MoonIcon }

function ThemeToggle() {
  const theme = useTheme()
  return (
    <button
      type="button"
      className="icon-btn"
      aria-label={`Theme: ${theme}. Switch to ${NEXT_THEME[theme]}`}
      title={`Theme: ${theme}`}
      onClick={() => setTheme(NEXT_THEME[theme])}
    >
      {(() => {
        const Icon = THEME_ICON[theme]
        return <Icon />
      })()}
    </button>
  )
}
