// The bell in the top bar: a count of what waits for a person, and a panel of it
// (the `n` shortcut toggles it; Esc or a click elsewhere closes it).
import { useCallback, useEffect, useRef, useState } from 'react'
import { Link, useLocation } from 'react-router'
import { useQuery } from '@tanstack/react-query'
import { useShortcut } from '../../shared/lib/shortcuts'
import { notificationsQuery } from './api'
import { InboxList } from './InboxList'
import { NotifyToggle } from './NotifyToggle'
import { useBrowserNotifications } from './notify'
import './inbox.css'

const BellIcon = () => (
  <svg width={16} height={16} viewBox="0 0 16 16" fill="none" stroke="currentColor" strokeWidth={1.6} strokeLinecap="round" strokeLinejoin="round" aria-hidden="true" focusable="false">
    <path d="M4 11.5V7a4 4 0 0 1 8 0v4.5l1.2 1.3H2.8zM6.5 13.8a1.6 1.6 0 0 0 3 0" />
  </svg>
)

export function InboxButton() {
  const list = useQuery(notificationsQuery)
  const count = list.data?.length ?? 0
  const [open, setOpen] = useState(false)
  const button = useRef<HTMLButtonElement>(null)
  const panel = useRef<HTMLDivElement>(null)
  const location = useLocation()
  useBrowserNotifications(list.data)

  const close = useCallback((refocus: boolean) => {
    setOpen(false)
    if (refocus) button.current?.focus()
  }, [])
  useShortcut('n', useCallback(() => setOpen((o) => !o), []))
  // A new page closes it.
  useEffect(() => setOpen(false), [location.pathname])
  useEffect(() => {
    if (!open) return
    panel.current?.focus()
    const onDown = (e: PointerEvent) => {
      const t = e.target as Node
      if (!panel.current?.contains(t) && !button.current?.contains(t)) close(false)
    }
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape' && !document.querySelector('dialog[open]')) {
        e.preventDefault()
        close(true)
      }
    }
    document.addEventListener('pointerdown', onDown)
    document.addEventListener('keydown', onKey)
    return () => {
      document.removeEventListener('pointerdown', onDown)
      document.removeEventListener('keydown', onKey)
    }
  }, [open, close])

  const name = `Notifications, ${count === 0 ? 'none' : count} waiting`
  return (
    <div className="inbox-anchor">
      <button
        ref={button}
        type="button"
        className={`icon-btn inbox-btn${count > 0 ? ' inbox-btn-has' : ''}`}
        aria-label={name}
        aria-expanded={open}
        aria-controls="inbox-panel"
        aria-keyshortcuts="n"
        title={`${name} (n)`}
        data-count={count}
        onClick={() => setOpen((o) => !o)}
      >
        <BellIcon />
        {count > 0 && (
          <span className="inbox-count" aria-hidden="true">
            {count > 99 ? '99+' : count}
          </span>
        )}
      </button>
      {open && (
        <div id="inbox-panel" ref={panel} className="inbox-panel" role="dialog" aria-labelledby="inbox-panel-h" tabIndex={-1}>
          <header className="inbox-panel-head">
            <h2 id="inbox-panel-h">Notifications</h2>
            <Link to="/inbox" className="small">
              Open the inbox
            </Link>
            <button type="button" className="icon-btn" aria-label="Close notifications" onClick={() => close(true)}>
              ×
            </button>
          </header>
          <div className="inbox-panel-body">
            <InboxList compact onNavigate={() => close(false)} />
          </div>
          <footer className="inbox-panel-foot">
            <NotifyToggle />
          </footer>
        </div>
      )}
    </div>
  )
}
