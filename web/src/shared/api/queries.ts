// Query keys and the queries every screen shares. The WebSocket (live.ts) keeps them
// fresh by invalidating what each event touches: no polling, except the cluster page
// (heartbeats are not events).
import { queryOptions, type QueryClient } from '@tanstack/react-query'
import { api, unwrap } from './client'
import type { SpecTask, TranscriptEntry } from './types'

export const keys = {
  session: ['session'] as const,
  tasks: ['tasks'] as const,
  task: (id: number) => ['task', id] as const,
  overview: (id: number) => ['overview', id] as const,
  versions: (id: number) => ['versions', id] as const,
  version: (id: number, n: number) => ['version', id, n] as const,
  sessions: (id: number) => ['sessions', id] as const,
  transcript: (sessionId: number) => ['transcript', sessionId] as const,
  events: (id: number) => ['events', id] as const,
  projects: ['projects'] as const,
  project: (id: number) => ['project', id] as const,
  tokens: ['tokens'] as const,
  permissions: ['permissions'] as const,
  cluster: ['cluster'] as const,
}

/** Every spec task, newest first: the board's one list, in pages of 200. */
export async function fetchAllTasks(): Promise<SpecTask[]> {
  performance.mark('spectask:tasks-start')
  const page = (cursor?: number) =>
    unwrap(api.GET('/api/v1/spec-tasks', { params: { query: { limit: 200, cursor } } }))
  const first = await page()
  const byId = new Map(first.items.map((t) => [t.id, t]))
  let next = first.next_cursor ?? null
  // Ids only grow, so the pages below the first start at cursor, cursor - 200, …:
  // asked for side by side. A page covers every id from its cursor down to the next
  // page's (fewer ids only make pages overlap, and the Map drops the repeats), and
  // whatever lies below the last one is followed by cursor as usual.
  while (next != null) {
    const cursors: number[] = []
    for (let c = next; c > 1 && cursors.length < 8; c -= 200) cursors.push(c)
    if (cursors.length === 0) break
    const pages = await Promise.all(cursors.map((c) => page(c)))
    for (const p of pages) for (const t of p.items) byId.set(t.id, t)
    next = pages[pages.length - 1]!.next_cursor ?? null
  }
  performance.mark('spectask:tasks-loaded')
  return [...byId.values()].sort((a, b) => b.id - a.id)
}

export const tasksQuery = queryOptions({ queryKey: keys.tasks, queryFn: fetchAllTasks })

export const taskQuery = (id: number) =>
  queryOptions({
    queryKey: keys.task(id),
    queryFn: () => unwrap(api.GET('/api/v1/spec-tasks/{id}', { params: { path: { id } } })),
  })

export const overviewQuery = (id: number) =>
  queryOptions({
    queryKey: keys.overview(id),
    queryFn: () => unwrap(api.GET('/api/v1/spec-tasks/{id}/overview', { params: { path: { id } } })),
  })

export const versionsQuery = (id: number) =>
  queryOptions({
    queryKey: keys.versions(id),
    queryFn: () =>
      unwrap(api.GET('/api/v1/spec-tasks/{id}/spec-versions', { params: { path: { id } } })),
  })

export const versionQuery = (id: number, number: number) =>
  queryOptions({
    queryKey: keys.version(id, number),
    queryFn: () =>
      unwrap(
        api.GET('/api/v1/spec-tasks/{id}/spec-versions/{number}', {
          params: { path: { id, number } },
        }),
      ),
  })

export const sessionsQuery = (id: number) =>
  queryOptions({
    queryKey: keys.sessions(id),
    queryFn: () => unwrap(api.GET('/api/v1/spec-tasks/{id}/sessions', { params: { path: { id } } })),
  })

export const transcriptQuery = (sessionId: number) =>
  queryOptions({
    queryKey: keys.transcript(sessionId),
    // Entries never change once written: each refresh asks only for the ones after
    // the last it has, and appends them.
    queryFn: async ({ client }): Promise<TranscriptEntry[]> => {
      const have = client.getQueryData<TranscriptEntry[]>(keys.transcript(sessionId)) ?? []
      const after = have.at(-1)?.id ?? 0
      const more = await unwrap(
        api.GET('/api/v1/sessions/{id}/transcript', { params: { path: { id: sessionId }, query: { after } } }),
      )
      return more.length ? [...have, ...more] : have
    },
  })

export const eventsQuery = (id: number) =>
  queryOptions({
    queryKey: keys.events(id),
    queryFn: async () => {
      const items = []
      let after = 0
      for (;;) {
        const page = await unwrap(
          api.GET('/api/v1/events', { params: { query: { spec_task: id, after, limit: 1000 } } }),
        )
        items.push(...page.items)
        if (page.items.length < 1000) return items
        after = page.next_after
      }
    },
  })

export const projectsQuery = queryOptions({
  queryKey: keys.projects,
  queryFn: () => unwrap(api.GET('/api/v1/projects')),
})

export const projectQuery = (id: number) =>
  queryOptions({
    queryKey: keys.project(id),
    queryFn: () => unwrap(api.GET('/api/v1/projects/{id}', { params: { path: { id } } })),
  })

export const tokensQuery = queryOptions({
  queryKey: keys.tokens,
  queryFn: () => unwrap(api.GET('/api/v1/tokens')),
})

export const pendingPermissionsQuery = queryOptions({
  queryKey: keys.permissions,
  queryFn: () =>
    unwrap(api.GET('/api/v1/permissions', { params: { query: { status: 'pending' } } })),
})

/** Puts a task (fresh from the server) into the board's list and its own cache entry. */
export function upsertTask(qc: QueryClient, task: SpecTask): void {
  qc.setQueryData(keys.task(task.id), task)
  qc.setQueryData<SpecTask[]>(keys.tasks, (list) => {
    if (!list) return list
    const i = list.findIndex((t) => t.id === task.id)
    if (i === -1) return [task, ...list].sort((a, b) => b.id - a.id)
    const next = list.slice()
    next[i] = task
    return next
  })
}
