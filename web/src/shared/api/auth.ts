// Browser sign-in: a one-time code from a sign-in link, or a pasted API token, is
// exchanged for an HttpOnly session cookie. Nothing here is ever stored by the page.
import { api, unwrap, type Schemas } from './client'

export type SessionInfo = Schemas['SessionInfo']

export function signIn(credential: { code: string } | { token: string }): Promise<SessionInfo> {
  return unwrap(api.POST('/api/v1/auth/sign-in', { body: credential }))
}

export function getSession(): Promise<SessionInfo> {
  return unwrap(api.GET('/api/v1/auth/session'))
}

export async function signOut(): Promise<void> {
  await unwrap(api.POST('/api/v1/auth/sign-out'))
}
