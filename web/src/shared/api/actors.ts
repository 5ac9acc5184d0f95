import { useQuery } from '@tanstack/react-query'
import { tokensQuery } from './queries'

/** `token:3` → the token's name (`admin`); `system` stays as it is. */
export function useActorName(): (actor: string) => string {
  const tokens = useQuery(tokensQuery)
  return (actor: string) => {
    const m = /^token:(\d+)$/.exec(actor)
    if (!m) return actor
    const t = tokens.data?.find((x) => x.id === Number(m[1]))
    return t ? t.name : actor
  }
}
