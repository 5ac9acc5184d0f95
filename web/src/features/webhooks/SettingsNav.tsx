// The settings pages' own tabs: tokens and webhooks.
import { NavLink } from 'react-router'
import './webhooks.css'

export function SettingsNav() {
  return (
    <nav className="settings-nav" aria-label="Settings">
      <NavLink to="/settings/tokens">Tokens</NavLink>
      <NavLink to="/settings/webhooks">Webhooks</NavLink>
    </nav>
  )
}
