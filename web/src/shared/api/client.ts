// The typed API client: openapi-fetch over the generated `paths`, with the session
// cookie (never a token: the browser holds only the HttpOnly cookie), JSON bodies,
// and one place that turns a 401 into a trip to the sign-in page.
import createClient, { type Middleware } from 'openapi-fetch'
import type { components, paths } from './schema'

export type Schemas = components['schemas']

/** An answer other than 2xx, with the server's `{"error":{code,message}}` when it sent one. */
export class ApiError extends Error {
  readonly status: number
  readonly code: string
  constructor(status: number, code: string, message: string) {
    super(message)
    this.name = 'ApiError'
    this.status = status
    this.code = code
  }
}

type Listener = () => void
const unauthorizedListeners = new Set<Listener>()

/** Called whenever the API answers 401 (the session ended or was never there). */
export function onUnauthorized(listener: Listener): () => void {
  unauthorizedListeners.add(listener)
  return () => unauthorizedListeners.delete(listener)
}

export function notifyUnauthorized(): void {
  for (const l of unauthorizedListeners) l()
}

const unauthorized: Middleware = {
  onResponse({ response, request }) {
    if (response.status === 401 && !new URL(request.url).pathname.startsWith('/api/v1/auth/')) {
      notifyUnauthorized()
    }
    return undefined
  },
}

export const api = createClient<paths>({
  baseUrl: '',
  credentials: 'same-origin',
  headers: { Accept: 'application/json' },
})
api.use(unauthorized)

function errorFrom(status: number, body: unknown, fallback: string): ApiError {
  const e = (body as { error?: { code?: string; message?: string } } | undefined)?.error
  return new ApiError(status, e?.code ?? 'error', e?.message ?? fallback)
}

/** Awaits an openapi-fetch call and returns its data, or throws an ApiError. */
export async function unwrap<T>(
  call: Promise<{ data?: T; error?: unknown; response: Response }>,
): Promise<T> {
  let result: { data?: T; error?: unknown; response: Response }
  try {
    result = await call
  } catch (err) {
    throw new ApiError(0, 'network', `the server could not be reached (${String(err)})`)
  }
  const { data, error, response } = result
  if (!response.ok) {
    throw errorFrom(response.status, error, `${response.status} ${response.statusText}`)
  }
  return data as T
}

export function errorMessage(err: unknown): string {
  if (err instanceof ApiError) return err.message
  if (err instanceof Error) return err.message
  return String(err)
}
