// `/settings/cluster`: the replicas sharing this server's PostgreSQL database, which
// one this dashboard talks to, the spec tasks each holds (with its lease) and the
// tasks waiting for a replica with room. A server without `--cluster` says so.
import { useQuery } from '@tanstack/react-query'
import { Link } from 'react-router'
import { taskQuery } from '../../shared/api/queries'
import type { ClusterStatus, LeaseStatus, ReplicaStatus } from '../../shared/api/types'
import { dateTime, duration } from '../../shared/lib/format'
import { ErrorNote, Loading, ProgressBar, StatusBadge } from '../../shared/ui/bits'
import { SettingsNav } from '../webhooks/SettingsNav'
import { clusterQuery } from './api'
import './cluster.css'

const STATE_LABEL: Record<string, string> = { running: 'Running', lost: 'Lost', stopped: 'Stopped' }
const STATE_RANK: Record<string, number> = { running: 0, lost: 1, stopped: 2 }

export function ClusterPage() {
  const cluster = useQuery(clusterQuery)
  const data = cluster.data
  return (
    <section className="page cluster-page" aria-labelledby="cluster-h">
      <SettingsNav />
      <h1 id="cluster-h">Cluster</h1>
      {cluster.isError && <ErrorNote error={cluster.error} title="Cluster" />}
      {cluster.isPending ? (
        <Loading what="the cluster" />
      ) : data?.replica == null ? (
        <Alone />
      ) : (
        <Replicas status={data} me={data.replica} />
      )}
    </section>
  )
}

function Alone() {
  return (
    <div className="panel cluster-alone" data-testid="cluster-alone">
      <p>
        <strong>This server runs alone</strong>: it is not a replica of a cluster, and it runs every spec task itself.
      </p>
      <p className="muted">
        To run a cluster, start each server with <code>spectask serve --cluster</code> on one shared database
        (PostgreSQL only: <code>--database-url postgres://…</code>) and a data dir of its own.
      </p>
    </div>
  )
}

function Replicas({ status, me }: { status: ClusterStatus; me: string }) {
  const replicas = [...status.replicas].sort(
    (a, b) => (STATE_RANK[a.state] ?? 3) - (STATE_RANK[b.state] ?? 3) || a.id.localeCompare(b.id),
  )
  const count = (state: string) => replicas.filter((r) => r.state === state).length
  const counts = ['running', 'lost', 'stopped']
    .map((s) => [s, count(s)] as const)
    .filter(([, n]) => n > 0)
    .map(([s, n]) => `${n} ${s}`)
  return (
    <>
      <p className="cluster-summary">
        This dashboard is connected to replica <strong data-testid="cluster-me">{me}</strong>.{' '}
        {status.lease_ttl_ms != null && (
          <span className="muted">
            A replica’s tasks go to the others {duration(status.lease_ttl_ms)} after its last heartbeat.
          </span>
        )}
      </p>
      <h2 id="replicas-h">
        Replicas <span className="muted cluster-count">{counts.join(', ') || 'none'}</span>
      </h2>
      <ul className="replicas" aria-labelledby="replicas-h">
        {replicas.map((r) => (
          <Replica key={r.id} replica={r} mine={r.id === me} />
        ))}
      </ul>
      <h2 id="unowned-h">Waiting for a replica with room</h2>
      {status.unowned.length === 0 ? (
        <p className="muted cluster-none">No task is waiting: every task in planning or implementation has a replica.</p>
      ) : (
        <ul className="panel unowned" aria-labelledby="unowned-h" data-testid="unowned">
          {status.unowned.map((id) => (
            <li key={id}>
              <TaskLink id={id} />
            </li>
          ))}
        </ul>
      )}
    </>
  )
}

function Replica({ replica: r, mine }: { replica: ReplicaStatus; mine: boolean }) {
  const head = `replica-${r.id}-h`
  const load = r.tasks.length
  return (
    <li className={`panel replica${mine ? ' replica-mine' : ''}`} data-replica={r.id} data-state={r.state} aria-labelledby={head}>
      <div className="replica-head">
        <h3 id={head} className="replica-name">
          {r.id}
        </h3>
        <span className={`badge replica-state state-${r.state}`}>{STATE_LABEL[r.state] ?? r.state}</span>
        {mine && <span className="badge replica-you">this dashboard</span>}
      </div>
      <dl className="replica-facts">
        <div className="fact-address">
          <dt>Address</dt>
          <dd>
            <code>{r.address}</code>
          </dd>
        </div>
        <div>
          <dt>Heartbeat</dt>
          <dd title={dateTime(r.heartbeat_at)}>{r.heartbeat_age_ms < 1000 ? 'just now' : `${duration(r.heartbeat_age_ms)} ago`}</dd>
        </div>
        <div>
          <dt>Load</dt>
          <dd className="replica-load">
            <span>
              {load} of {r.max_agents} {r.max_agents === 1 ? 'task' : 'tasks'}
            </span>
            <ProgressBar fraction={r.max_agents > 0 ? load / r.max_agents : 0} label={`Load of replica ${r.id}`} />
          </dd>
        </div>
        <div>
          <dt>Started</dt>
          <dd title={dateTime(r.started_at)}>{duration(startedAgo(r))} ago</dd>
        </div>
      </dl>
      {r.tasks.length === 0 ? (
        <p className="muted small replica-idle">Holds no task.</p>
      ) : (
        <Leases replica={r.id} leases={r.tasks} />
      )}
    </li>
  )
}

function Leases({ replica, leases }: { replica: string; leases: LeaseStatus[] }) {
  return (
    <table className="table leases">
      <caption className="visually-hidden">Tasks replica {replica} holds</caption>
      <thead>
        <tr>
          <th scope="col">Task</th>
          <th scope="col">Fence</th>
          <th scope="col">Held for</th>
          <th scope="col">Lease</th>
        </tr>
      </thead>
      <tbody>
        {[...leases]
          .sort((a, b) => a.spec_task_id - b.spec_task_id)
          .map((l) => (
            <tr key={l.spec_task_id} data-lease={l.spec_task_id}>
              <td className="l-task">
                <TaskLink id={l.spec_task_id} />
              </td>
              <td className="l-fence" data-label="Fence">
                {l.fence}
              </td>
              <td className="l-held" data-label="Held for" title={`since ${dateTime(l.acquired_at)}`}>
                {duration(l.held_ms)}
              </td>
              <td className="l-expires" data-label="Lease">
                {l.expires_in_ms >= 0 ? `expires in ${duration(l.expires_in_ms)}` : `expired ${duration(l.expires_in_ms)} ago`}
              </td>
            </tr>
          ))}
      </tbody>
    </table>
  )
}

/** How long ago the replica started, on the server's clock (its heartbeat age says
 * what "now" is there), so a browser whose clock is off still reads it right. */
function startedAgo(r: ReplicaStatus): number {
  return Date.parse(r.heartbeat_at) + r.heartbeat_age_ms - Date.parse(r.started_at)
}

/** A spec task's number and title (when it has loaded), linking to its page. */
function TaskLink({ id }: { id: number }) {
  const task = useQuery(taskQuery(id))
  return (
    <span className="cluster-task">
      <Link to={`/tasks/${id}`} data-task-link={id}>
        #{id}
        {task.data ? ` ${task.data.title}` : ''}
      </Link>
      {task.data && <StatusBadge status={task.data.status} />}
    </span>
  )
}
