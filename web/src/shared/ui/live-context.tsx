import { createContext, useContext, useState, useSyncExternalStore, type ReactNode } from 'react'
import { useQueryClient } from '@tanstack/react-query'
import { LiveConnection, type LiveSnapshot } from '../api/live'

const Ctx = createContext<LiveConnection | null>(null)

export function LiveProvider({ children }: { children: ReactNode }) {
  const qc = useQueryClient()
  const [live] = useState(() => new LiveConnection(qc))
  return <Ctx.Provider value={live}>{children}</Ctx.Provider>
}

export function useLive(): LiveConnection {
  const live = useContext(Ctx)
  if (!live) throw new Error('useLive outside LiveProvider')
  return live
}

export function useLiveState(): LiveSnapshot {
  const live = useLive()
  return useSyncExternalStore(live.subscribe, live.getSnapshot)
}
