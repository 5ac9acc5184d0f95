// The settings pages' own tabs: tokens, webhooks and the cluster.
import { NavLink } from 'react-router'
import './webhooks.css'

export function SettingsNav() {
  return (
    <nav className="settings-nav" aria-label="Settings">
      <NavLink to="/settings/tokens">Tokens</NavLink>
      <NavLink to="/settings/webhooks">Webhooks</NavLink>
      <NavLink to="/settings/cluster">Cluster</NavLink>
    </nav>
  )
}
