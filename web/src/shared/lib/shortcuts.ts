// Keyboard shortcuts: single keys and `g` sequences, ignored while typing in a field.
import { useEffect, useRef } from 'react'

export interface Shortcut {
  keys: string
  description: string
}

export const SHORTCUTS: Shortcut[] = [
  { keys: '?', description: 'Show these shortcuts' },
  { keys: 'c', description: 'Create a task' },
  { keys: '/', description: 'Search the board' },
  { keys: 'j / k', description: 'Next / previous card' },
  { keys: 'Enter', description: 'Open the focused card' },
  { keys: 'a', description: 'Approve (in spec review)' },
  { keys: 'g b', description: 'Go to the board' },
  { keys: 'g p', description: 'Go to projects' },
  { keys: 'g t', description: 'Go to tokens' },
  { keys: 'n', description: 'Open or close the notifications' },
  { keys: 'g i', description: 'Go to the notifications page' },
  { keys: 'g w', description: 'Go to webhooks' },
  { keys: 'Esc', description: 'Close a dialog' },
]

export function isTyping(target: EventTarget | null): boolean {
  const el = target as HTMLElement | null
  if (!el) return false
  const tag = el.tagName
  return tag === 'INPUT' || tag === 'TEXTAREA' || tag === 'SELECT' || el.isContentEditable
}

/** Binds `key` (e.g. "c", "g b") while the component is mounted. */
export function useShortcut(key: string, handler: (e: KeyboardEvent) => void, enabled = true): void {
  // The latest handler, without binding the key again: a page that re-renders on a
  // live event between "g" and "w" must not lose the pending "g".
  const latest = useRef(handler)
  useEffect(() => {
    latest.current = handler
  })
  useEffect(() => {
    if (!enabled) return
    const parts = key.split(' ')
    let pendingPrefix = false
    let timer: ReturnType<typeof setTimeout> | null = null
    const onKey = (e: KeyboardEvent) => {
      if (e.defaultPrevented || e.metaKey || e.ctrlKey || e.altKey || isTyping(e.target)) return
      if (document.querySelector('dialog[open]') && key !== 'Escape') return
      if (parts.length === 2) {
        if (pendingPrefix && e.key === parts[1]) {
          pendingPrefix = false
          e.preventDefault()
          latest.current(e)
          return
        }
        pendingPrefix = e.key === parts[0]
        if (timer) clearTimeout(timer)
        if (pendingPrefix) timer = setTimeout(() => (pendingPrefix = false), 1200)
        return
      }
      if (e.key === key) {
        e.preventDefault()
        latest.current(e)
      }
    }
    window.addEventListener('keydown', onKey)
    return () => {
      window.removeEventListener('keydown', onKey)
      if (timer) clearTimeout(timer)
    }
  }, [key, enabled])
}
