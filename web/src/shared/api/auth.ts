// Browser sign-in: a one-time code from a sign-in link, or a pasted API token, is
// exchanged for an HttpOnly session cookie. Nothing here is ever stored by the page.
import { request } from './client'

export interface SessionInfo {
  token_name: string
  expires_at: string | null
  via: 'cookie' | 'bearer' | string
}

export function signIn(credential: { code: string } | { token: string }): Promise<SessionInfo> {
  return request<SessionInfo>('POST', '/api/v1/auth/sign-in', credential)
}

export function getSession(): Promise<SessionInfo> {
  return request<SessionInfo>('GET', '/api/v1/auth/session')
}

export async function signOut(): Promise<void> {
  await request<void>('POST', '/api/v1/auth/sign-out', {})
}
