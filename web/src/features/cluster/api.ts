// The cluster's status. Lease and status events (entity `spec_task`) refresh it
// through live.ts; heartbeats are not events, so it is also asked for again every
// two seconds while the page is open and visible.
import { queryOptions } from '@tanstack/react-query'
import { api, unwrap } from '../../shared/api/client'
import { keys } from '../../shared/api/queries'

export const REFRESH_MS = 2000

export const clusterQuery = queryOptions({
  queryKey: keys.cluster,
  queryFn: () => unwrap(api.GET('/api/v1/cluster')),
  refetchInterval: REFRESH_MS,
})
