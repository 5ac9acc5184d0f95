import type { SpecTaskStatus } from '../../shared/api/types'

export interface ColumnDef {
  id: string
  title: string
  statuses: SpecTaskStatus[]
  /** Which project WIP limit applies, counted on the status that runs. */
  wip?: { setting: 'planning_wip_limit' | 'implementation_wip_limit'; running: SpecTaskStatus }
}

export const COLUMNS: ColumnDef[] = [
  { id: 'backlog', title: 'Backlog', statuses: ['backlog'] },
  {
    id: 'planning',
    title: 'Planning',
    statuses: ['planning', 'planning_queued'],
    wip: { setting: 'planning_wip_limit', running: 'planning' },
  },
  { id: 'spec_review', title: 'Spec review', statuses: ['spec_review'] },
  {
    id: 'implementing',
    title: 'Implementing',
    statuses: ['implementing', 'implementation_queued'],
    wip: { setting: 'implementation_wip_limit', running: 'implementing' },
  },
  { id: 'implementation_review', title: 'Implementation review', statuses: ['implementation_review'] },
  { id: 'done', title: 'Done', statuses: ['done'] },
  { id: 'closed', title: 'Failed / cancelled', statuses: ['failed', 'cancelled', 'rejected'] },
]

export const COLUMN_OF: Record<SpecTaskStatus, string> = Object.fromEntries(
  COLUMNS.flatMap((c) => c.statuses.map((s) => [s, c.id])),
) as Record<SpecTaskStatus, string>

export const PRIORITY_RANK: Record<string, number> = { critical: 0, high: 1, medium: 2, low: 3 }
