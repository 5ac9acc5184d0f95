import { useState, type FormEvent } from 'react'
import { Link, useNavigate } from 'react-router'
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { api, errorMessage, unwrap } from '../../shared/api/client'
import { keys, projectsQuery } from '../../shared/api/queries'
import { Empty, ErrorNote, Loading } from '../../shared/ui/bits'
import { toast } from '../../shared/ui/toast'

export function ProjectsPage() {
  const projects = useQuery(projectsQuery)
  return (
    <section className="page" aria-labelledby="projects-h">
      <h1 id="projects-h">Projects</h1>
      {projects.isError && <ErrorNote error={projects.error} />}
      {projects.isPending ? (
        <Loading what="projects" />
      ) : (projects.data ?? []).length === 0 ? (
        <Empty>No repository is registered yet.</Empty>
      ) : (
        <div className="table-scroll">
          <table className="table">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Repository</th>
                <th scope="col">Base branch</th>
                <th scope="col">WIP (planning / implementing)</th>
                <th scope="col">Parallel sessions</th>
              </tr>
            </thead>
            <tbody>
              {projects.data!.map((p) => (
                <tr key={p.id}>
                  <td>
                    <Link to={`/projects/${p.id}`}>{p.name}</Link>
                  </td>
                  <td>
                    <code>{p.path}</code>
                  </td>
                  <td>
                    <code>{p.base_branch}</code>
                  </td>
                  <td>
                    {p.planning_wip_limit ?? '∞'} / {p.implementation_wip_limit ?? '∞'}
                  </td>
                  <td>{p.max_parallel_sessions}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <RegisterForm />
    </section>
  )
}

function RegisterForm() {
  const qc = useQueryClient()
  const navigate = useNavigate()
  const [path, setPath] = useState('')
  const [name, setName] = useState('')
  const [base, setBase] = useState('')
  const [error, setError] = useState<string | null>(null)
  const create = useMutation({
    mutationFn: () =>
      unwrap(
        api.POST('/api/v1/projects', {
          body: { path: path.trim(), name: name.trim() || null, base_branch: base.trim() || null },
        }),
      ),
    onSuccess: (p) => {
      void qc.invalidateQueries({ queryKey: keys.projects })
      toast('ok', `Registered ${p.name}`)
      navigate(`/projects/${p.id}`)
    },
    onError: (err) => setError(errorMessage(err)),
  })
  const submit = (e: FormEvent) => {
    e.preventDefault()
    setError(null)
    if (!path.trim().startsWith('/')) {
      setError('Give the absolute path of a git repository on the server’s machine.')
      return
    }
    create.mutate()
  }
  return (
    <section className="panel" aria-labelledby="register-h">
      <h2 id="register-h">Register a repository</h2>
      <form className="form grid-form" onSubmit={submit}>
        <label htmlFor="proj-path">Repository path</label>
        <input id="proj-path" value={path} placeholder="/home/me/code/myapp" onChange={(e) => setPath(e.target.value)} required />
        <label htmlFor="proj-name">Name</label>
        <input id="proj-name" value={name} placeholder="The folder's name" onChange={(e) => setName(e.target.value)} />
        <label htmlFor="proj-base">Base branch</label>
        <input id="proj-base" value={base} placeholder="The branch it has checked out" onChange={(e) => setBase(e.target.value)} />
        {error && (
          <p className="note note-error span-2" role="alert">
            {error}
          </p>
        )}
        <div className="row-actions span-2">
          <button type="submit" className="btn btn-primary" disabled={create.isPending}>
            Register
          </button>
        </div>
      </form>
      <p className="muted small">spectask never touches your checkout: it works on its own branches and worktrees.</p>
    </section>
  )
}
