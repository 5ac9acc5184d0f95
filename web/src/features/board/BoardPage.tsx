import { memo, useCallback, useDeferredValue, useMemo, useRef, useState } from 'react'
import { Link, useNavigate, useSearchParams } from 'react-router'
import { useQuery } from '@tanstack/react-query'
import { pendingPermissionsQuery, projectsQuery, tasksQuery } from '../../shared/api/queries'
import type { Action, PermissionRequest, Project, SpecTask } from '../../shared/api/types'
import { useAnyTaskAction } from '../../shared/api/actions'
import { PRIORITIES } from '../../shared/api/types'
import { ErrorNote, Loading } from '../../shared/ui/bits'
import { useShortcut } from '../../shared/lib/shortcuts'
import { useOpenCreate } from '../../shared/ui/Layout'
import { COLUMNS, PRIORITY_RANK, type ColumnDef } from './columns'
import { TaskCard } from './TaskCard'
import { ConfirmCancel } from './ConfirmCancel'

/** Cards a column renders before "Show more". */
const PAGE = 100

export function BoardPage() {
  const [params, setParams] = useSearchParams()
  const tasks = useQuery(tasksQuery)
  const projects = useQuery(projectsQuery)
  const permissions = useQuery(pendingPermissionsQuery)
  const openCreate = useOpenCreate()
  const searchRef = useRef<HTMLInputElement>(null)
  const navigate = useNavigate()
  const [cancelling, setCancelling] = useState<SpecTask | null>(null)

  const project = params.get('project') ?? ''
  const priority = params.get('priority') ?? ''
  const text = params.get('q') ?? ''
  const deferredText = useDeferredValue(text)

  const setParam = (name: string, value: string) => {
    const next = new URLSearchParams(params)
    if (value) next.set(name, value)
    else next.delete(name)
    setParams(next, { replace: true })
  }

  useShortcut(
    '/',
    useCallback(() => {
      searchRef.current?.focus()
      searchRef.current?.select()
    }, []),
  )
  const moveFocus = useCallback((delta: number) => {
    const cards = Array.from(document.querySelectorAll<HTMLElement>('[data-card]'))
    if (cards.length === 0) return
    const at = cards.indexOf(document.activeElement as HTMLElement)
    const next = at === -1 ? (delta > 0 ? 0 : cards.length - 1) : Math.max(0, Math.min(cards.length - 1, at + delta))
    cards[next]?.focus()
    cards[next]?.scrollIntoView({ block: 'nearest', inline: 'nearest' })
  }, [])
  useShortcut('j', useCallback(() => moveFocus(1), [moveFocus]))
  useShortcut('k', useCallback(() => moveFocus(-1), [moveFocus]))

  const permsByTask = useMemo(() => {
    const m = new Map<number, PermissionRequest[]>()
    for (const p of permissions.data ?? []) {
      const list = m.get(p.spec_task_id) ?? []
      list.push(p)
      m.set(p.spec_task_id, list)
    }
    return m
  }, [permissions.data])

  const projectsById = useMemo(() => new Map((projects.data ?? []).map((p) => [p.id, p])), [projects.data])

  const filtered = useMemo(() => {
    const all = tasks.data ?? []
    const q = deferredText.trim().toLowerCase()
    const pid = project ? Number(project) : null
    return all.filter(
      (t) =>
        (pid === null || t.project_id === pid) &&
        (!priority || t.priority === priority) &&
        (!q || t.title.toLowerCase().includes(q) || String(t.id) === q.replace(/^#/, '') || t.branch.includes(q)),
    )
  }, [tasks.data, deferredText, project, priority])

  const byColumn = useMemo(() => {
    const m = new Map<string, SpecTask[]>(COLUMNS.map((c) => [c.id, []]))
    const colOf = new Map<string, string>()
    for (const c of COLUMNS) for (const s of c.statuses) colOf.set(s, c.id)
    for (const t of filtered) m.get(colOf.get(t.status) ?? 'closed')?.push(t)
    for (const list of m.values()) {
      list.sort((a, b) => (PRIORITY_RANK[a.priority] ?? 9) - (PRIORITY_RANK[b.priority] ?? 9) || b.id - a.id)
    }
    return m
  }, [filtered])

  // WIP: counted over every task of the projects in scope, not just the filtered ones.
  const scopeProjects = useMemo(
    () => (projects.data ?? []).filter((p) => !project || p.id === Number(project)),
    [projects.data, project],
  )

  const onCancel = useCallback((t: SpecTask) => setCancelling(t), [])
  // One mutation for every card's buttons, not one per card.
  const action = useAnyTaskAction()
  const onAction = useCallback((t: SpecTask, a: Action) => action.mutate({ id: t.id, action: a }), [action.mutate]) // eslint-disable-line react-hooks/exhaustive-deps
  const onOpen = useCallback(
    (e: React.MouseEvent<HTMLAnchorElement>) => {
      if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return
      e.preventDefault()
      navigate(e.currentTarget.getAttribute('href')!)
    },
    [navigate],
  )
  const busyId = action.isPending ? (action.variables?.id ?? null) : null

  const total = tasks.data?.length ?? 0
  const shown = filtered.length

  return (
    <section className="board-page" aria-labelledby="board-title">
      <div className="board-toolbar">
        <h1 id="board-title" className="board-title">
          Board
        </h1>
        <div className="filters" role="search">
          <label className="visually-hidden" htmlFor="board-search">
            Search tasks
          </label>
          <input
            id="board-search"
            ref={searchRef}
            type="search"
            placeholder="Search tasks (/)"
            aria-keyshortcuts="/"
            value={text}
            onChange={(e) => setParam('q', e.target.value)}
            onKeyDown={(e) => {
              if (e.key === 'Escape') (e.target as HTMLInputElement).blur()
            }}
          />
          <label className="visually-hidden" htmlFor="board-project">
            Project
          </label>
          <select id="board-project" value={project} onChange={(e) => setParam('project', e.target.value)}>
            <option value="">All projects</option>
            {(projects.data ?? []).map((p) => (
              <option key={p.id} value={p.id}>
                {p.name}
              </option>
            ))}
          </select>
          <label className="visually-hidden" htmlFor="board-priority">
            Priority
          </label>
          <select id="board-priority" value={priority} onChange={(e) => setParam('priority', e.target.value)}>
            <option value="">Any priority</option>
            {PRIORITIES.map((p) => (
              <option key={p} value={p}>
                {p}
              </option>
            ))}
          </select>
          <span className="muted count" aria-live="polite">
            {shown === total ? `${total} task${total === 1 ? '' : 's'}` : `${shown} of ${total} task${total === 1 ? '' : 's'}`}
          </span>
        </div>
      </div>
      {tasks.isError && <ErrorNote error={tasks.error} title="The board could not load" />}
      {tasks.isPending ? (
        <Loading what="the board" />
      ) : total === 0 ? (
        <div className="board-empty">
          <p>No tasks yet.</p>
          {(projects.data ?? []).length === 0 ? (
            <p>
              First <Link to="/projects">register a repository</Link>, then create a task.
            </p>
          ) : (
            <button type="button" className="btn btn-primary" onClick={openCreate}>
              Create a task
            </button>
          )}
        </div>
      ) : (
        <>
        <nav className="column-jump" aria-label="Jump to a column">
          {COLUMNS.map((c) => {
            const n = byColumn.get(c.id)?.length ?? 0
            return (
              <button
                key={c.id}
                type="button"
                className={n ? 'has' : ''}
                onClick={() => document.querySelector(`[data-column="${c.id}"]`)?.scrollIntoView({ inline: 'start', block: 'nearest' })}
              >
                {c.title}
                <b>{n}</b>
              </button>
            )
          })}
        </nav>
        <div className="board" data-testid="board" data-total={total}>
          {COLUMNS.map((c) => (
            <Column
              key={c.id}
              column={c}
              tasks={byColumn.get(c.id) ?? []}
              all={tasks.data ?? []}
              scopeProjects={scopeProjects}
              permsByTask={permsByTask}
              projectsById={projectsById}
              showProject={(projects.data ?? []).length > 1 && !project}
              onCancel={onCancel}
              onAction={onAction}
              busyId={busyId}
              onOpen={onOpen}
            />
          ))}
        </div>
        </>
      )}
      <ConfirmCancel task={cancelling} onClose={() => setCancelling(null)} />
    </section>
  )
}

function wipLabel(column: ColumnDef, all: SpecTask[], scope: Project[]) {
  const wip = column.wip
  if (!wip) return null
  const limited = scope.filter((p) => p[wip.setting] != null)
  if (limited.length === 0) return null
  const parts = limited.map((p) => {
    const running = all.filter((t) => t.project_id === p.id && t.status === wip.running).length
    const limit = p[wip.setting] as number
    return { name: p.name, running, limit, full: running >= limit }
  })
  const full = parts.some((p) => p.full)
  const text =
    parts.length === 1 ? `WIP ${parts[0]!.running}/${parts[0]!.limit}` : `WIP limits (${parts.length} projects)`
  const title = parts.map((p) => `${p.name}: ${p.running} of ${p.limit} ${wip.running}${p.full ? ' (full)' : ''}`).join('\n')
  return { text, title, full }
}

const Column = memo(function Column(props: {
  column: ColumnDef
  tasks: SpecTask[]
  all: SpecTask[]
  scopeProjects: Project[]
  permsByTask: Map<number, PermissionRequest[]>
  projectsById: Map<number, Project>
  showProject: boolean
  onCancel: (t: SpecTask) => void
  onAction: (t: SpecTask, a: Action) => void
  busyId: number | null
  onOpen: (e: React.MouseEvent<HTMLAnchorElement>) => void
}) {
  const { column, tasks } = props
  const [limit, setLimit] = useState(PAGE)
  const wip = useMemo(() => wipLabel(column, props.all, props.scopeProjects), [column, props.all, props.scopeProjects])
  const visible = tasks.length > limit ? tasks.slice(0, limit) : tasks
  const headingId = `col-${column.id}`
  return (
    <section className={`column column-${column.id}`} aria-labelledby={headingId} data-column={column.id}>
      <header className="column-head">
        <h2 id={headingId}>{column.title}</h2>
        <span className="column-count" aria-label={`${tasks.length} tasks`}>
          {tasks.length}
        </span>
        {wip && (
          <span className={`wip ${wip.full ? 'wip-full' : ''}`} title={wip.title} aria-label={wip.title}>
            {wip.text}
          </span>
        )}
      </header>
      {tasks.length === 0 ? (
        <p className="column-empty muted">Nothing here</p>
      ) : (
      <ol className="column-cards">
        {visible.map((t) => (
          <li key={t.id}>
            <TaskCard
              task={t}
              permissions={props.permsByTask.get(t.id)?.length ?? 0}
              projectName={props.showProject ? props.projectsById.get(t.project_id)?.name : undefined}
              onCancel={props.onCancel}
              onAction={props.onAction}
              busy={props.busyId === t.id}
              onOpen={props.onOpen}
            />
          </li>
        ))}
      </ol>
      )}
      {tasks.length > limit && (
        <div className="show-more-row">
          <button type="button" className="btn btn-ghost show-more" onClick={() => setLimit((l) => l + PAGE)}>
            Show {Math.min(PAGE, tasks.length - limit)} more
          </button>
          <button type="button" className="btn btn-ghost show-all" onClick={() => setLimit(Infinity)}>
            Show all {tasks.length}
          </button>
        </div>
      )}
    </section>
  )
})
