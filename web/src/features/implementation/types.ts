// The implementation tab's types, all from the generated schema.
import type { Schemas } from '../../shared/api/client'

export type Overview = Schemas['Overview']
export type SessionNode = Schemas['SessionNode']
export type WorkSession = Schemas['WorkSession']
export type WorkSessionStatus = Schemas['WorkSessionStatus']
export type TaskGraphView = Schemas['TaskGraphView']
export type TaskProgress = Schemas['TaskProgress']
export type SessionProgress = Schemas['SessionProgress']
export type ImplStatus = Schemas['ImplementationTaskStatus']
export type AgentInstance = Schemas['AgentInstance']
export type AgentThread = Schemas['AgentThread']
export type CoordinationEvent = Schemas['CoordinationEvent']
export type CoordinationKind = Schemas['CoordinationKind']
export type SpawnRequest = Schemas['SpawnRequest']
export type PostCoordination = Schemas['PostCoordination']
export type Decision = Schemas['Decision']
export type AgentSample = Schemas['AgentSample']

/** Session statuses in which its agent is at work. */
export const WORKING: ReadonlySet<WorkSessionStatus> = new Set(['running', 'verifying', 'merging'])
/** Session statuses that end it. */
export const FINISHED: ReadonlySet<WorkSessionStatus> = new Set(['completed', 'failed', 'skipped', 'cancelled'])
