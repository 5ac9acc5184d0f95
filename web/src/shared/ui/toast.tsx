// Messages about what just happened (an action done, or refused with the server's
// words), announced to screen readers.
import { useSyncExternalStore } from 'react'

export interface Toast {
  id: number
  kind: 'ok' | 'error'
  text: string
}

let toasts: Toast[] = []
let next = 1
const listeners = new Set<() => void>()
const emit = () => listeners.forEach((l) => l())

export function toast(kind: Toast['kind'], text: string): void {
  const t = { id: next++, kind, text }
  toasts = [...toasts, t].slice(-4)
  emit()
  setTimeout(() => dismiss(t.id), kind === 'error' ? 12000 : 2500)
}

export function dismiss(id: number): void {
  toasts = toasts.filter((t) => t.id !== id)
  emit()
}

export function Toasts() {
  const list = useSyncExternalStore(
    (cb) => {
      listeners.add(cb)
      return () => listeners.delete(cb)
    },
    () => toasts,
  )
  return (
    <div className="toasts" aria-live="polite">
      {list.map((t) => (
        <div key={t.id} className={`toast toast-${t.kind}`} role={t.kind === 'error' ? 'alert' : 'status'}>
          <span className="toast-text">{t.text}</span>
          <button type="button" className="icon-btn" aria-label="Dismiss message" onClick={() => dismiss(t.id)}>
            ×
          </button>
        </div>
      ))}
    </div>
  )
}
