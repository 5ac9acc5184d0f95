import type { Schemas } from './client'

export type SpecTask = Schemas['SpecTask']
export type SpecTaskStatus = Schemas['SpecTaskStatus']
export type Priority = Schemas['Priority']
export type TaskType = Schemas['TaskType']
export type Project = Schemas['Project']
export type ProjectSettingsPatch = Schemas['ProjectSettingsPatch']
export type Event = Schemas['Event']
export type Overview = Schemas['Overview']
export type Attention = Schemas['Attention']
export type SpecVersion = Schemas['SpecVersion']
export type SpecVersionView = Schemas['SpecVersionView']
export type ReviewComment = Schemas['ReviewComment']
export type SpecReport = Schemas['SpecReport']
export type TranscriptEntry = Schemas['TranscriptEntry']
export type WorkSession = Schemas['WorkSession']
export type ApiToken = Schemas['ApiToken']
export type CreatedToken = Schemas['CreatedToken']
export type PermissionRequest = Schemas['PermissionRequest']
export type Action = 'start-planning' | 'approve' | 'request-changes' | 'reject' | 'cancel' | 'retry'

export const PRIORITIES: Priority[] = ['critical', 'high', 'medium', 'low']
export const TASK_TYPES: TaskType[] = ['feature', 'bugfix', 'refactor']
/** The built-in agent profiles (a server may configure more; the field takes any name). */
export const AGENT_PROFILES = ['claude', 'gemini', 'codex', 'opencode', 'goose', 'qwen']
