// Browser notifications (the Notifications API), opt-in: a person turns them on in
// the notification center (the permission prompt comes only from that click). While
// the tab is in the background, each entry whose key this page has not seen before
// becomes one notification; clicking it brings the tab forward on the entry's page.
import { useEffect, useRef, useSyncExternalStore } from 'react'
import { useNavigate } from 'react-router'
import type { Notification as Entry } from './types'
import { KIND_LABEL } from './types'

const KEY = 'spectask.browser-notifications'
const listeners = new Set<() => void>()

export type NotifyState = 'unsupported' | 'off' | 'on' | 'denied'

function supported(): boolean {
  return typeof window !== 'undefined' && 'Notification' in window
}

function read(): NotifyState {
  if (!supported()) return 'unsupported'
  if (window.Notification.permission === 'denied') return 'denied'
  let wanted = false
  try {
    wanted = localStorage.getItem(KEY) === '1'
  } catch {
    wanted = false
  }
  return wanted && window.Notification.permission === 'granted' ? 'on' : 'off'
}

let current: NotifyState = read()
const emit = () => {
  current = read()
  for (const l of listeners) l()
}

export function useNotifyState(): NotifyState {
  return useSyncExternalStore(
    (cb) => {
      listeners.add(cb)
      return () => listeners.delete(cb)
    },
    () => current,
  )
}

/** Turns browser notifications on (asking for permission if need be) or off. */
export async function setBrowserNotifications(on: boolean): Promise<NotifyState> {
  if (!supported()) return 'unsupported'
  try {
    if (on) localStorage.setItem(KEY, '1')
    else localStorage.removeItem(KEY)
  } catch {
    // Storage refused: the choice lasts as long as this module does.
  }
  if (on && window.Notification.permission === 'default') {
    await window.Notification.requestPermission()
  }
  emit()
  return current
}

/** Shows new entries as browser notifications while the tab is hidden and they are on. */
export function useBrowserNotifications(entries: Entry[] | undefined): void {
  const navigate = useNavigate()
  const seen = useRef<Set<string> | null>(null)
  const state = useNotifyState()
  useEffect(() => {
    if (!entries) return
    const before = seen.current
    seen.current = new Set(entries.map((e) => e.key))
    // The first list is what was already waiting when the page opened: not news.
    if (!before || state !== 'on' || document.visibilityState !== 'hidden') return
    for (const e of entries) {
      if (before.has(e.key)) continue
      try {
        const n = new window.Notification(`${KIND_LABEL[e.kind]}: ${e.title}`, {
          body: `#${e.spec_task_id} ${e.spec_task_title}${e.message && e.message !== e.title ? `\n${e.message}` : ''}`,
          tag: e.key,
        })
        n.onclick = () => {
          window.focus()
          navigate(e.link)
          n.close()
        }
      } catch {
        // Some browsers only notify from a service worker: nothing to show then.
      }
    }
  }, [entries, state, navigate])
}
