// One WebSocket for the whole app: `/api/v1/events/ws?after=<cursor>` replays the
// change log after the cursor, says `caught_up`, then pushes each event as it
// commits. Each event invalidates the queries it touches (batched per frame), and
// spec-task events patch the board's list in place, so 1,000 cards never refetch
// because one moved. On close it reconnects with backoff from the last id it saw,
// so nothing is missed and nothing comes twice.
import type { QueryClient, QueryKey } from '@tanstack/react-query'
import { api, notifyUnauthorized, unwrap } from './client'
import { getSession } from './auth'
import { keys, upsertTask } from './queries'
import type { Event, SpecTask, SpecTaskStatus } from './types'

export type LiveState = 'connecting' | 'live' | 'offline'

export interface LiveSnapshot {
  state: LiveState
  /** The id of the newest event this page has seen. */
  lastId: number
  /** When offline: the close reason the server gave, if any. */
  reason: string
}

type EventListener = (event: Event) => void

/** Entities whose events may add or remove a notification. */
const NOTIFYING = new Set(['spec_task', 'work_session', 'implementation_task', 'permission_request', 'coordination_event'])

const MIN_BACKOFF_MS = 500
const MAX_BACKOFF_MS = 10_000

/** The newest event id in the log, from one `GET /events?limit=1`. */
export async function newestEventId(): Promise<number> {
  const page = await unwrap(api.GET('/api/v1/events', { params: { query: { after: 0, limit: 1 } } }))
  return page.last_id
}

export class LiveConnection {
  private ws: WebSocket | null = null
  private snapshot: LiveSnapshot = { state: 'connecting', lastId: 0, reason: '' }
  private subscribers = new Set<() => void>()
  private listeners = new Set<EventListener>()
  private backoff = MIN_BACKOFF_MS
  private timer: ReturnType<typeof setTimeout> | null = null
  private stopped = false
  private caughtUpOnce = false
  private pendingKeys = new Map<string, QueryKey>()
  private pendingTasks = new Set<number>()
  private flushScheduled = false
  private readonly qc: QueryClient

  constructor(qc: QueryClient) {
    this.qc = qc
  }

  getSnapshot = (): LiveSnapshot => this.snapshot

  subscribe = (cb: () => void): (() => void) => {
    this.subscribers.add(cb)
    return () => this.subscribers.delete(cb)
  }

  /** Hears every event (after the cache was told), e.g. for a live transcript. */
  onEvent(listener: EventListener): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  private set(patch: Partial<LiveSnapshot>): void {
    this.snapshot = { ...this.snapshot, ...patch }
    for (const s of this.subscribers) s()
  }

  private generation = 0
  /** When the starting cursor was read: data read before it may miss an event. */
  private cursorAt = 0

  async start(): Promise<void> {
    const gen = ++this.generation
    this.stopped = false
    this.caughtUpOnce = false
    this.set({ state: 'connecting' })
    try {
      const newest = await newestEventId()
      this.cursorAt = Date.now()
      this.set({ lastId: newest })
    } catch {
      // Unreachable or signed out: the connection attempt below says which.
    }
    if (gen === this.generation && !this.stopped) this.connect()
  }

  stop(): void {
    this.generation++
    this.stopped = true
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
    const ws = this.ws
    this.ws = null
    if (ws) ws.close(1000, 'signed out')
  }

  private connect(): void {
    if (this.stopped) return
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:'
    const url = `${proto}//${location.host}/api/v1/events/ws?after=${this.snapshot.lastId}`
    const ws = new WebSocket(url)
    this.ws = ws
    let opened = false
    this.set({ state: this.snapshot.state === 'live' ? 'connecting' : this.snapshot.state })
    ws.onopen = () => {
      opened = true
    }
    ws.onmessage = (msg) => {
      if (typeof msg.data !== 'string') return
      let frame: { type: string; event?: Event; after?: number }
      try {
        frame = JSON.parse(msg.data)
      } catch {
        return
      }
      if (frame.type === 'event' && frame.event) {
        this.handle(frame.event)
      } else if (frame.type === 'caught_up') {
        this.backoff = MIN_BACKOFF_MS
        if (typeof frame.after === 'number' && frame.after > this.snapshot.lastId) {
          this.set({ lastId: frame.after })
        }
        this.set({ state: 'live', reason: '' })
        if (!this.caughtUpOnce) {
          // Data read before the cursor was may lack an event at or below it.
          this.caughtUpOnce = true
          const at = this.cursorAt || Date.now()
          void this.qc.invalidateQueries({ predicate: (q) => q.state.dataUpdatedAt < at })
        }
      }
    }
    ws.onclose = (ev) => {
      if (this.ws !== ws) return
      this.ws = null
      if (this.stopped) return
      this.set({ state: 'offline', reason: ev.reason || (opened ? 'connection lost' : 'could not connect') })
      if (!opened) {
        // A refused handshake may mean the session ended: ask, and sign in again if so.
        getSession().then(
          () => this.retry(),
          (err: { status?: number }) => {
            if (err?.status === 401) notifyUnauthorized()
            else this.retry()
          },
        )
      } else {
        this.retry(ev.code === 4008 ? MIN_BACKOFF_MS : undefined)
      }
    }
  }

  private retry(delay?: number): void {
    if (this.stopped) return
    const base = delay ?? this.backoff
    const wait = base / 2 + Math.random() * (base / 2)
    this.backoff = Math.min(MAX_BACKOFF_MS, this.backoff * 2)
    if (this.timer) clearTimeout(this.timer)
    this.timer = setTimeout(() => {
      this.timer = null
      this.connect()
    }, wait)
  }

  private invalidate(key: QueryKey): void {
    this.pendingKeys.set(JSON.stringify(key), key)
    this.scheduleFlush()
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return
    this.flushScheduled = true
    setTimeout(() => this.flush(), 50)
  }

  private flush(): void {
    this.flushScheduled = false
    const keysNow = [...this.pendingKeys.values()]
    this.pendingKeys.clear()
    for (const key of keysNow) void this.qc.invalidateQueries({ queryKey: key })
    const tasks = [...this.pendingTasks]
    this.pendingTasks.clear()
    if (tasks.length > 50) {
      void this.qc.invalidateQueries({ queryKey: keys.tasks })
      return
    }
    for (const id of tasks) {
      unwrap(api.GET('/api/v1/spec-tasks/{id}', { params: { path: { id } } })).then(
        (task) => upsertTask(this.qc, task),
        () => void this.qc.invalidateQueries({ queryKey: keys.tasks }),
      )
    }
  }

  private handle(event: Event): void {
    if (event.id <= this.snapshot.lastId) return
    this.snapshot = { ...this.snapshot, lastId: event.id }
    const task = event.spec_task_id ?? null
    const data = (event.data ?? {}) as Record<string, unknown>
    switch (event.entity) {
      case 'spec_task': {
        const id = event.entity_id ?? task
        if (id != null) {
          const to = data.to as SpecTaskStatus | undefined
          if (to) {
            // Move the card at once; the fetch below brings the rest (reason, times).
            this.qc.setQueryData<SpecTask[]>(keys.tasks, (list) =>
              list?.map((t) => (t.id === id ? { ...t, status: to } : t)),
            )
          }
          if (this.qc.isFetching({ queryKey: keys.tasks }) > 0) this.invalidate(keys.tasks)
          this.pendingTasks.add(id)
          this.invalidate(keys.overview(id))
          this.invalidate(keys.sessions(id))
          this.invalidate(keys.versions(id))
          // A lease taken (`spec_task.lease_taken`) or a status that needs an owner.
          this.invalidate(keys.cluster)
        }
        break
      }
      case 'spec_version':
      case 'review':
      case 'review_comment':
        if (task != null) {
          this.invalidate(keys.versions(task))
          this.invalidate(['version', task])
        }
        break
      case 'transcript_entry': {
        const session = data.work_session_id
        if (typeof session === 'number') this.invalidate(keys.transcript(session))
        break
      }
      case 'permission_request':
        this.invalidate(keys.permissions)
        if (task != null) this.invalidate(keys.overview(task))
        break
      case 'project':
        this.invalidate(keys.projects)
        if (event.entity_id != null) this.invalidate(keys.project(event.entity_id))
        break
      case 'token':
        this.invalidate(keys.tokens)
        break
      case 'webhook':
      case 'webhook_delivery':
        // Only the webhooks page shows them (below).
        break
      default:
        // work_session, implementation_task, agent_instance, agent_thread,
        // coordination_event, shared_state, …: the task's overview shows them.
        if (task != null) {
          this.invalidate(keys.overview(task))
          this.invalidate(keys.sessions(task))
        }
    }
    if (task != null && event.entity !== 'transcript_entry') this.invalidate(keys.events(task))
    // The notification center's list is computed from these.
    if (NOTIFYING.has(event.entity)) this.invalidate(['notifications'])
    if (event.entity === 'webhook') this.invalidate(['webhooks'])
    if (event.entity === 'webhook_delivery') {
      const hook = data.webhook_id
      this.invalidate(typeof hook === 'number' ? ['webhooks', hook, 'deliveries'] : ['webhooks'])
    }
    for (const l of this.listeners) l(event)
  }
}
