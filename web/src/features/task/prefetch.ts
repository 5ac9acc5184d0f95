// The implementation tab's code and its data, started as soon as the route is known
// (by main.tsx on a page load of the tab's address, by the task page on a route
// change, by the tab's link when pointed at or focused): the chunk, the task and the
// overview travel side by side instead of one after the other.
import type { ComponentType } from 'react'
import type { QueryClient } from '@tanstack/react-query'
import { getSession } from '../../shared/api/auth'
import { keys, overviewQuery, taskQuery } from '../../shared/api/queries'
import type { SpecTask } from '../../shared/api/types'

export type ImplementationTabComponent = ComponentType<{ task: SpecTask }>

let loaded: ImplementationTabComponent | null = null
let loading: Promise<ImplementationTabComponent> | null = null

/** The tab's component once its chunk has arrived (then it renders at once). */
export const implementationTab = (): ImplementationTabComponent | null => loaded

export const loadImplementation = (): Promise<ImplementationTabComponent> =>
  (loading ??= import('./ImplementationTab')
    .then((m) => (loaded = m.ImplementationTab))
    .catch((err: unknown) => {
      loading = null
      throw err
    }))

/** The tab's chunk and the task's overview (which carries the task: whichever answers first shows the page). */
export function prefetchImplementation(qc: QueryClient, id: number): void {
  if (!Number.isInteger(id) || id <= 0) return
  loadImplementation().catch(() => undefined)
  qc.fetchQuery(overviewQuery(id)).then(
    (o) => qc.getQueryData(keys.task(id)) ?? qc.setQueryData(keys.task(id), o.task),
    () => undefined,
  )
}

/**
 * On a page load of the tab's address, before React's first render: the session check
 * (the layout's query, which would otherwise leave only after that render), the task,
 * the tab's chunk and the overview, side by side.
 */
export function prefetchImplementationRoute(qc: QueryClient, pathname: string): void {
  const m = /^\/tasks\/(\d+)\/implementation\/?$/.exec(pathname)
  if (!m) return
  const id = Number(m[1])
  void qc.prefetchQuery({ queryKey: keys.session, queryFn: getSession, retry: false })
  void qc.prefetchQuery(taskQuery(id))
  prefetchImplementation(qc, id)
}
