// `/sign-in#code=…`: the link `spectask serve` prints. The code sits in the fragment
// (never sent to a server, never logged); it is posted once, removed from the
// address bar, and exchanged for an HttpOnly cookie. Or a person pastes a token.
import { useEffect, useRef, useState, type FormEvent } from 'react'
import { useNavigate, useSearchParams } from 'react-router'
import { useQueryClient } from '@tanstack/react-query'
import { signIn } from '../../shared/api/auth'
import { errorMessage } from '../../shared/api/client'
import { keys } from '../../shared/api/queries'

/** Only same-site paths are followed after signing in. */
function safeNext(next: string | null): string {
  if (!next || !next.startsWith('/') || next.startsWith('//') || next.startsWith('/sign-in')) return '/'
  return next
}

export function SignInPage() {
  const [params] = useSearchParams()
  const navigate = useNavigate()
  const qc = useQueryClient()
  const next = safeNext(params.get('next'))
  const [error, setError] = useState<string | null>(null)
  const [busy, setBusy] = useState(false)
  const [token, setToken] = useState('')
  const tried = useRef(false)

  const done = () => {
    qc.removeQueries({ queryKey: keys.session })
    navigate(next, { replace: true })
  }

  useEffect(() => {
    if (tried.current) return
    tried.current = true
    const fragment = new URLSearchParams(window.location.hash.slice(1))
    const code = fragment.get('code')
    if (!code) return
    // Take the code out of the address bar (and history) before anything else.
    history.replaceState(history.state, '', window.location.pathname + window.location.search)
    setBusy(true)
    signIn({ code }).then(done, (err) => {
      setBusy(false)
      setError(`That sign-in link did not work: ${errorMessage(err)}. Links work once and expire; ask for a new one with \`spectask dashboard\`, or paste a token.`)
    })
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [])

  const submit = async (e: FormEvent) => {
    e.preventDefault()
    const value = token.trim()
    if (!value) {
      setError('Paste an API token (it starts with st_).')
      return
    }
    setBusy(true)
    setError(null)
    try {
      await signIn({ token: value })
      setToken('')
      done()
    } catch (err) {
      setBusy(false)
      setError(`Sign-in refused: ${errorMessage(err)}`)
    }
  }

  return (
    <div className="center-page">
      <main className="card-panel signin" id="main" tabIndex={-1}>
        <h1>
          <span className="brand-mark" aria-hidden="true" /> spectask
        </h1>
        {params.get('signed_out') && !error && <p className="note">You are signed out.</p>}
        {busy && !error ? (
          <p role="status">Signing in…</p>
        ) : (
          <>
            <p>
              Open the sign-in link that <code>spectask serve</code> printed, or run{' '}
              <code>spectask dashboard</code> for a new one. Or paste an API token:
            </p>
            <form onSubmit={submit} className="form">
              <label htmlFor="token">API token</label>
              <input
                id="token"
                name="token"
                type="password"
                autoComplete="off"
                spellCheck={false}
                placeholder="st_…"
                value={token}
                onChange={(e) => setToken(e.target.value)}
              />
              <button type="submit" className="btn btn-primary" disabled={busy}>
                Sign in
              </button>
            </form>
          </>
        )}
        {error && (
          <p className="note note-error" role="alert">
            {error}
          </p>
        )}
      </main>
    </div>
  )
}
