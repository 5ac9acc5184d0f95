import { useState, type FormEvent } from 'react'
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { api, errorMessage, unwrap } from '../../shared/api/client'
import { keys, tokensQuery } from '../../shared/api/queries'
import type { ApiToken, CreatedToken } from '../../shared/api/types'
import { ErrorNote, Loading } from '../../shared/ui/bits'
import { Dialog } from '../../shared/ui/Dialog'
import { toast } from '../../shared/ui/toast'
import { dateTime } from '../../shared/lib/format'
import { SettingsNav } from '../webhooks/SettingsNav'

export function TokensPage() {
  const qc = useQueryClient()
  const tokens = useQuery(tokensQuery)
  const [name, setName] = useState('')
  const [error, setError] = useState<string | null>(null)
  const [created, setCreated] = useState<CreatedToken | null>(null)
  const [revoking, setRevoking] = useState<ApiToken | null>(null)

  const create = useMutation({
    mutationFn: () => unwrap(api.POST('/api/v1/tokens', { body: { name: name.trim() } })),
    onSuccess: (t) => {
      setName('')
      setCreated(t)
      void qc.invalidateQueries({ queryKey: keys.tokens })
    },
    onError: (err) => setError(errorMessage(err)),
  })
  const revoke = useMutation({
    mutationFn: (id: number) => unwrap(api.POST('/api/v1/tokens/{id}/revoke', { params: { path: { id } } })),
    onSuccess: (t) => {
      void qc.invalidateQueries({ queryKey: keys.tokens })
      toast('ok', `Token “${t.name}” revoked`)
      setRevoking(null)
    },
    onError: (err) => toast('error', `Revoke refused: ${errorMessage(err)}`),
  })

  const submit = (e: FormEvent) => {
    e.preventDefault()
    setError(null)
    if (!name.trim()) {
      setError('Name the token (who or what uses it).')
      return
    }
    create.mutate()
  }

  return (
    <section className="page" aria-labelledby="tokens-h">
      <SettingsNav />
      <h1 id="tokens-h">API tokens</h1>
      <p className="muted">Tokens let the CLI, scripts and CI use the API. Only their hashes are stored.</p>
      <form className="panel form inline-form" onSubmit={submit}>
        <label htmlFor="token-name">New token’s name</label>
        <input id="token-name" value={name} maxLength={100} placeholder="e.g. ci" onChange={(e) => setName(e.target.value)} />
        <button type="submit" className="btn btn-primary" disabled={create.isPending}>
          Create token
        </button>
        {error && (
          <p className="note note-error" role="alert">
            {error}
          </p>
        )}
      </form>
      {tokens.isError && <ErrorNote error={tokens.error} />}
      {tokens.isPending ? (
        <Loading what="tokens" />
      ) : (
        <div className="table-scroll">
          <table className="table">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Created</th>
                <th scope="col">State</th>
                <th scope="col">
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {(tokens.data ?? []).map((t) => (
                <tr key={t.id} className={t.revoked_at ? 'row-muted' : ''}>
                  <td>
                    {t.name} <span className="muted">#{t.id}</span>
                  </td>
                  <td>{dateTime(t.created_at)}</td>
                  <td>{t.revoked_at ? `revoked ${dateTime(t.revoked_at)}` : 'active'}</td>
                  <td>
                    {!t.revoked_at && (
                      <button type="button" className="btn btn-sm btn-ghost btn-danger-text" onClick={() => setRevoking(t)} aria-label={`Revoke token ${t.name}`}>
                        Revoke
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <Dialog open={created !== null} title="Token created" onClose={() => setCreated(null)}>
        {created && (
          <>
            <p>
              This is the only time <strong>{created.name}</strong> is shown. Copy it now:
            </p>
            <div className="token-value">
              <code data-testid="new-token">{created.token}</code>
              <button
                type="button"
                className="btn btn-sm"
                onClick={() =>
                  navigator.clipboard?.writeText(created.token).then(
                    () => toast('ok', 'Copied'),
                    () => toast('error', 'Copy failed: select the text instead'),
                  )
                }
              >
                Copy
              </button>
            </div>
            <div className="dialog-actions">
              <button type="button" className="btn btn-primary" onClick={() => setCreated(null)}>
                Done
              </button>
            </div>
          </>
        )}
      </Dialog>
      <Dialog open={revoking !== null} title="Revoke this token?" onClose={() => setRevoking(null)}>
        {revoking && (
          <>
            <p>
              <strong>{revoking.name}</strong> stops working at once, for every client using it (and browsers signed in with it).
            </p>
            <div className="dialog-actions">
              <button type="button" className="btn" onClick={() => setRevoking(null)}>
                Keep it
              </button>
              <button type="button" className="btn btn-danger" disabled={revoke.isPending} onClick={() => revoke.mutate(revoking.id)}>
                Revoke
              </button>
            </div>
          </>
        )}
      </Dialog>
    </section>
  )
}
