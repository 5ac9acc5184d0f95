// The opt-in for browser notifications; the permission prompt comes from this click only.
import { setBrowserNotifications, useNotifyState } from './notify'

export function NotifyToggle() {
  const state = useNotifyState()
  if (state === 'unsupported') return <p className="muted small">This browser cannot show notifications.</p>
  return (
    <label className="check small inbox-notify">
      <input
        type="checkbox"
        checked={state === 'on'}
        disabled={state === 'denied'}
        onChange={(e) => void setBrowserNotifications(e.target.checked)}
      />
      {state === 'denied'
        ? 'Browser notifications are blocked for this site (allow them in the browser’s site settings)'
        : 'Browser notifications while this tab is in the background'}
    </label>
  )
}
