// `/inbox`: the notification center as a page.
import { Link } from 'react-router'
import { useQuery } from '@tanstack/react-query'
import { notificationsQuery } from './api'
import { InboxList } from './InboxList'
import { NotifyToggle } from './NotifyToggle'
import './inbox.css'

export function InboxPage() {
  const list = useQuery(notificationsQuery)
  const count = list.data?.length
  return (
    <section className="page inbox-page" aria-labelledby="inbox-h">
      <div className="inbox-page-head">
        <h1 id="inbox-h">
          Notifications{count != null && count > 0 && <span className="inbox-group-count">{count}</span>}
        </h1>
        <NotifyToggle />
      </div>
      <p className="muted">
        What waits for a person: reviews, questions from agents, conflicts and failures. An entry goes away when what
        it is about is handled, here or anywhere else. <Link to="/settings/webhooks">Webhooks</Link> deliver the same list
        when no browser is open.
      </p>
      <InboxList />
    </section>
  )
}
