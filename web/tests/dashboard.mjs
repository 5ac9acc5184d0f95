// The dashboard in real headless Chromium, against a live `spectask serve` whose
// planning agent is the scripted one (tests/dashboard.rs sets it up and runs this):
//
//   sign in with the one-time link → a task created through the API appears on the
//   board and moves across columns while planning runs, with no reload → open the
//   spec, comment on a line, request changes, see version 2 and its diff, approve →
//   a refused action (approving a spec with errors) shows the server's message →
//   screenshots (light/dark, 1280×800 and 375 px) → sign out, and the board and the
//   WebSocket refuse.
//
// Env: SPECTASK_URL, SPECTASK_SIGN_IN (the link), SPECTASK_TOKEN (for the API calls
// a script would make), SPECTASK_REPO (a git repository to register through the
// Projects page; or SPECTASK_PROJECT, the id of one already registered),
// SPECTASK_SCREENSHOTS (where the screenshots go).
// Every wait is on a DOM state or an event, with a timeout; nothing sleeps.
import { BASE, SHOTS, api, assert, launch, required, step, runScenario, eachLook } from './lib.mjs'

const LINK = required('SPECTASK_SIGN_IN')
let PROJECT = Number(process.env.SPECTASK_PROJECT ?? 0)
const REPO = process.env.SPECTASK_REPO ?? ''
if (!PROJECT && !REPO) required('SPECTASK_REPO')
const WAIT = { timeout: 45_000 }

const browser = await launch()
await runScenario(browser, run)

async function run() {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } })
  const page = await context.newPage()
  const problems = []
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`))
  page.on('console', (m) => {
    if (m.type() === 'error' && !/401|403|Failed to load resource|WebSocket/.test(m.text())) problems.push(`console: ${m.text()}`)
  })
  const sockets = []
  page.on('websocket', (ws) => sockets.push(ws.url()))

  await step('sign in with the one-time link', async () => {
    await page.goto(LINK)
    await page.waitForURL(`${BASE}/`, WAIT)
    await page.locator('[data-live="live"]').waitFor(WAIT)
    assert(!page.url().includes('#'), `the code left the address bar: ${page.url()}`)
    const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }))
    assert(!stored.includes('st_'), `a credential is in the page's storage: ${stored}`)
    const cookies = await context.cookies()
    const session = cookies.find((c) => c.name === 'spectask_session')
    assert(session && session.httpOnly && session.sameSite === 'Strict', `session cookie: ${JSON.stringify(session)}`)
    // Marks this document: a reload would lose it.
    await page.evaluate(() => (window.__sameDocument = true))
  })

  if (!PROJECT) {
    await step('register the repository on the Projects page and set a WIP limit', async () => {
      await page.getByRole('link', { name: 'Projects', exact: true }).click()
      await page.getByLabel('Repository path').fill(REPO)
      await page.getByRole('button', { name: 'Register' }).click()
      await page.waitForURL(/\/projects\/\d+$/, WAIT)
      PROJECT = Number(new URL(page.url()).pathname.split('/').pop())
      await page.getByLabel('Planning WIP limit').fill('2')
      await page.getByRole('button', { name: 'Save (1)' }).click()
      await page.getByRole('status').filter({ hasText: 'Settings saved' }).waitFor(WAIT)
      const project = await api('GET', `/projects/${PROJECT}`)
      assert(project.planning_wip_limit === 2, `planning_wip_limit ${project.planning_wip_limit}`)
      await page.getByRole('link', { name: 'Board', exact: true }).click()
      await page.locator('.board-empty, [data-testid="board"]').first().waitFor(WAIT)
    })
  }

  await step('the second use of the same link is refused', async () => {
    const other = await browser.newContext()
    const p = await other.newPage()
    await p.goto(LINK)
    await p.getByRole('alert').filter({ hasText: 'did not work' }).waitFor(WAIT)
    await other.close()
  })

  const task = await step('a task created through the API appears on the board, live', async () => {
    await page.evaluate(() => {
      // Records every column the watched card shows up in, as the DOM changes.
      window.__columns = {}
      new MutationObserver(() => {
        for (const card of document.querySelectorAll('[data-task-id]')) {
          const col = card.closest('[data-column]')?.dataset.column
          const seen = (window.__columns[card.dataset.taskId] ??= [])
          if (col && seen.at(-1) !== col) seen.push(col)
        }
      }).observe(document.body, { subtree: true, childList: true, attributes: true })
    })
    const t = await api('POST', '/spec-tasks', {
      project_id: PROJECT,
      title: 'Add a login page',
      prompt: 'Add a login page with GitHub OAuth',
      priority: 'high',
    })
    await page.locator(`[data-column="backlog"] [data-task-id="${t.id}"]`).waitFor(WAIT)
    await page.locator('[data-column="planning"] .wip').filter({ hasText: 'WIP 0/2' }).waitFor(WAIT)
    return t
  })

  await step('it moves across the columns while planning runs, without a reload', async () => {
    await api('POST', `/spec-tasks/${task.id}/start-planning`)
    await page.locator(`[data-column="spec_review"] [data-task-id="${task.id}"]`).waitFor(WAIT)
    const seen = await page.evaluate((id) => window.__columns[id], String(task.id))
    assert(JSON.stringify(seen) === JSON.stringify(['backlog', 'planning', 'spec_review']), `columns seen: ${seen}`)
    assert(await page.evaluate(() => window.__sameDocument === true), 'the page reloaded')
  })

  await step('filters: / focuses the search, text and priority narrow the board', async () => {
    await page.keyboard.press('/')
    assert(await page.evaluate(() => document.activeElement?.id === 'board-search'), '/ did not focus the search')
    await page.keyboard.type('no such task')
    await page.locator('.count').filter({ hasText: '0 of 1 task' }).waitFor(WAIT)
    await page.getByLabel('Search tasks').fill('login')
    await page.locator('.count').filter({ hasText: /^1 task$/ }).waitFor(WAIT)
    await page.getByLabel('Search tasks').fill('')
    await page.getByLabel('Priority').selectOption('low')
    await page.locator('.count').filter({ hasText: '0 of 1 task' }).waitFor(WAIT)
    await page.getByLabel('Priority').selectOption('')
    await page.locator('body').click({ position: { x: 5, y: 300 } })
  })

  await step('keyboard: ? lists the shortcuts, j focuses a card', async () => {
    await page.keyboard.press('?')
    await page.getByRole('dialog', { name: 'Keyboard shortcuts' }).waitFor(WAIT)
    await page.keyboard.press('Escape')
    await page.getByRole('dialog', { name: 'Keyboard shortcuts' }).waitFor({ state: 'hidden', ...WAIT })
    await page.keyboard.press('j')
    assert(await page.evaluate(() => document.activeElement?.hasAttribute('data-card')), 'j did not focus a card')
  })

  await step('open the spec and comment on a line', async () => {
    await page.locator(`[data-task-id="${task.id}"]`).getByRole('link', { name: /Review the spec/ }).click()
    await page.waitForURL(new RegExp(`/tasks/${task.id}/spec`), WAIT)
    await page.getByRole('button', { name: 'Version 1 (latest)' }).waitFor(WAIT)
    await page.getByRole('button', { name: 'Source', exact: true }).click()
    await page.getByRole('button', { name: /^Comment on line 3\b/ }).click()
    await page.getByRole('textbox', { name: 'Comment' }).fill('Say who the users are.')
    await page.getByRole('button', { name: 'Add comment' }).click()
    await page.locator('.comment').filter({ hasText: 'Say who the users are.' }).filter({ hasText: 'line 3' }).waitFor(WAIT)
    // And one on a rendered block.
    await page.getByRole('button', { name: 'Rendered', exact: true }).click()
    await page.locator('.block-add').first().click()
    await page.getByRole('textbox', { name: 'Comment' }).fill('A clearer title, please.')
    await page.getByRole('button', { name: 'Add comment' }).click()
    await page.getByRole('heading', { name: /Comments \(2 open\)/ }).waitFor(WAIT)
    // And one on a selected passage.
    await page.evaluate(() => {
      const p = [...document.querySelectorAll('.doc .block-body p')].find((e) => e.textContent.includes('Users log in'))
      const range = document.createRange()
      range.selectNodeContents(p.firstChild)
      const sel = window.getSelection()
      sel.removeAllRanges()
      sel.addRange(range)
      p.dispatchEvent(new MouseEvent('mouseup', { bubbles: true }))
    })
    await page.getByRole('button', { name: 'Comment on selection' }).click()
    await page.getByRole('textbox', { name: 'Comment' }).fill('Which data?')
    await page.getByRole('button', { name: 'Add comment' }).click()
    await page.locator('.comment').filter({ hasText: 'Which data?' }).filter({ hasText: '“Users log in' }).waitFor(WAIT)
    await page.getByRole('heading', { name: /Comments \(3 open\)/ }).waitFor(WAIT)
  })

  await step('request changes: planning runs again (its transcript live) and version 2 arrives', async () => {
    await page.evaluate(() => {
      window.__transcript = []
      new MutationObserver(() => {
        for (const el of document.querySelectorAll('[data-testid="planning-progress"] .tr-text')) {
          if (!window.__transcript.includes(el.textContent)) window.__transcript.push(el.textContent)
        }
      }).observe(document.body, { subtree: true, childList: true, characterData: true })
    })
    await page.getByRole('button', { name: /Request changes \(3 open comments\)/ }).click()
    // A picture of planning while it runs, if it is still running (not an assertion).
    try {
      await page.locator('[data-testid="planning-progress"] .tr').first().waitFor({ timeout: 2000 })
      await page.screenshot({ path: `${SHOTS}/planning-light-desktop.png` })
    } catch {
      console.log('(planning ended before its screenshot)')
    }
    await page.getByRole('button', { name: 'Version 2 (latest)' }).waitFor(WAIT)
    assert(
      (await page.getByRole('button', { name: 'Version 2 (latest)' }).getAttribute('aria-pressed')) === 'true',
      'version 2 is not the one shown',
    )
    const said = await page.evaluate(() => window.__transcript)
    assert(said.some((t) => t.includes('reading the repository')), `the planning transcript showed: ${JSON.stringify(said)}`)
    assert(await page.evaluate(() => window.__sameDocument === true), 'the page reloaded')
  })

  await step('the diff from version 1', async () => {
    await page.getByRole('button', { name: 'Changes from v1' }).click()
    await page.locator('.diff-file').first().waitFor(WAIT)
    const added = await page.locator('.dl-add').allInnerTexts()
    assert(added.some((t) => t.includes('Design v2')), `added lines: ${added.join(' | ')}`)
    const removed = await page.locator('.dl-del').allInnerTexts()
    assert(removed.some((t) => t.includes('Design v1')), `removed lines: ${removed.join(' | ')}`)
    await page.getByRole('button', { name: 'Version 1' }).click()
    await page.waitForURL(/v=1/, WAIT)
    await page.goBack()
    await page.waitForURL((u) => !u.search.includes('v=1'), WAIT)
    await page.getByRole('button', { name: 'Version 2 (latest)', pressed: true }).waitFor(WAIT)
  })

  await step('approve (the a key)', async () => {
    await page.getByRole('button', { name: /^requirements\.md/ }).click()
    await page.locator('body').click({ position: { x: 5, y: 300 } })
    await page.keyboard.press('a')
    await page.locator('.task-meta .badge').first().filter({ hasNotText: 'spec review' }).waitFor(WAIT)
    const status = (await api('GET', `/spec-tasks/${task.id}`)).status
    assert(['implementation_queued', 'implementing', 'implementation_review', 'done'].includes(status), `status ${status}`)
  })

  const broken = await step('a spec with errors cannot be approved: the page says why', async () => {
    const b = await api('POST', '/spec-tasks/import', {
      project_id: PROJECT,
      title: 'An imported spec with errors',
      files: {
        'requirements.md': '# Requirements\n\n### Requirement 1: Log in\n\n#### Acceptance Criteria\n\n1. WHEN a user logs in THEN the system SHALL start a session\n',
        'design.md': '# Design\n\n```rust\nfn login() -> Session { todo!() }\n```\n',
        'tasks.md': '# Plan\n\n- [ ] 1. Session table\n  - _Requirements: 1.1_\n- [ ] 2. Login\n  - _Depends: 7_\n  - _Requirements: 1.1_\n',
      },
    })
    await page.getByRole('link', { name: 'Board', exact: true }).click()
    await page.locator(`[data-task-id="${b.id}"]`).getByRole('link', { name: /Review the spec/ }).click()
    await page.getByTestId('approve-blocked').waitFor(WAIT)
    // A comment, resolved.
    await page.getByRole('button', { name: 'Comment on the whole document' }).click()
    await page.getByRole('textbox', { name: 'Comment' }).fill('Task 2 depends on a task that does not exist.')
    await page.getByRole('button', { name: 'Add comment' }).click()
    await page.getByRole('heading', { name: /Comments \(1 open\)/ }).waitFor(WAIT)
    await page.getByRole('button', { name: /^Resolve comment/ }).click()
    await page.getByRole('heading', { name: /Comments \(0 open, 1 resolved\)/ }).waitFor(WAIT)
    return b
  })

  await step("a refused action shows the server's message", async () => {
    await page.getByRole('button', { name: 'Approve', exact: true }).click()
    const refused = page.getByTestId('action-refused')
    await refused.waitFor(WAIT)
    const text = await refused.innerText()
    assert(text.includes('cannot be approved'), `refusal shown: ${text}`)
    assert((await api('GET', `/spec-tasks/${broken.id}`)).status === 'spec_review', 'the refused approval changed the task')
    assert(await page.evaluate(() => window.__sameDocument === true), 'the page reloaded')
  })

  await step('create a task from the dialog (the c key)', async () => {
    await page.getByRole('link', { name: 'Board', exact: true }).click()
    await page.locator('[data-testid="board"]').waitFor(WAIT)
    await page.keyboard.press('c')
    const dialog = page.getByRole('dialog', { name: 'New task' })
    await dialog.waitFor(WAIT)
    await dialog.getByLabel('Title').fill('Export the audit log as CSV')
    await dialog.getByLabel('Prompt').fill('Add a CSV export of the audit log')
    await dialog.getByLabel('Priority').selectOption('critical')
    await dialog.getByLabel('Type').selectOption('refactor')
    await dialog.getByLabel('Max parallel sessions').fill('2')
    await dialog.getByRole('button', { name: 'Create task' }).click()
    await page.waitForURL(/\/tasks\/\d+\/spec$/, WAIT)
    await page.getByRole('heading', { name: /Export the audit log as CSV/ }).waitFor(WAIT)
    const id = Number(new URL(page.url()).pathname.split('/')[2])
    const t = await api('GET', `/spec-tasks/${id}`)
    assert(t.priority === 'critical' && t.task_type === 'refactor' && t.max_parallel_sessions === 2, JSON.stringify(t))
  })

  await step('one WebSocket for the whole visit', async () => {
    const live = sockets.filter((u) => u.includes('/api/v1/events/ws'))
    assert(live.length === 1, `WebSockets opened: ${live.join(', ')}`)
  })

  await step('screenshots: board and spec review, light and dark, 1280×800 and 375 px', async () => {
    const shoot = async (name, path, ready) => {
      await eachLook(page, async (scheme, size) => {
        await page.goto(`${BASE}${path}`)
        await page.locator(ready).first().waitFor(WAIT)
        await page.locator('[data-live="live"]').waitFor(WAIT)
        await page.screenshot({ path: `${SHOTS}/${name}-${scheme}-${size}.png` })
      })
    }
    await shoot('board', '/', '[data-task-id]')
    await shoot('spec-review', `/tasks/${broken.id}/spec`, '[data-testid="approve-blocked"]')
    await shoot('spec-comments', `/tasks/${task.id}/spec?v=1`, '.comment')
    await shoot('spec-diff', `/tasks/${task.id}/spec?doc=diff`, '.diff-file')
  })

  await step('the theme toggle overrides the system and is kept', async () => {
    await page.goto(`${BASE}/`)
    await page.getByRole('button', { name: /^Theme: system/ }).click()
    await page.getByRole('button', { name: /^Theme: light/ }).click()
    assert((await page.evaluate(() => document.documentElement.dataset.theme)) === 'dark', 'not dark')
    await page.reload()
    assert((await page.evaluate(() => document.documentElement.dataset.theme)) === 'dark', 'not kept')
    await page.getByRole('button', { name: /^Theme: dark/ }).click()
    assert((await page.evaluate(() => document.documentElement.dataset.theme)) === undefined, 'not back to system')
  })

  await step('deep links: a task tab and a spec version open directly', async () => {
    await page.goto(`${BASE}/tasks/${task.id}/spec?v=1&doc=design.md`)
    await page.getByRole('button', { name: 'Version 1', pressed: true }).waitFor(WAIT)
    await page.locator('.doc[data-document="design.md"]').waitFor(WAIT)
    await page.goto(`${BASE}/tasks/${task.id}/history`)
    await page.locator('.tl-item').first().waitFor(WAIT)
  })

  await step('every control has an accessible name', async () => {
    for (const path of ['/', `/tasks/${broken.id}/spec`, '/projects', `/projects/${PROJECT}`, '/settings/tokens']) {
      await page.goto(`${BASE}${path}`)
      await page.locator('main h1, main h2').first().waitFor(WAIT)
      const unnamed = await page.evaluate(() => {
        const out = []
        for (const el of document.querySelectorAll('button, a[href], input, select, textarea, [role="button"]')) {
          if (el.closest('[hidden], dialog:not([open])')) continue
          const labelled =
            el.getAttribute('aria-label') ||
            el.getAttribute('aria-labelledby') ||
            (el.id && document.querySelector(`label[for="${el.id}"]`)) ||
            el.closest('label') ||
            (el.textContent ?? '').trim() ||
            el.getAttribute('title') ||
            el.getAttribute('placeholder')
          if (!labelled) out.push(el.outerHTML.slice(0, 120))
        }
        return out
      })
      assert(unnamed.length === 0, `unnamed controls on ${path}: ${unnamed.join('\n')}`)
    }
  })

  await step('tokens: create one (its value shown once), list it, revoke it', async () => {
    await page.goto(`${BASE}/settings/tokens`)
    await page.getByLabel('New token’s name').fill('ci')
    await page.getByRole('button', { name: 'Create token' }).click()
    const value = await page.getByTestId('new-token').innerText()
    assert(value.startsWith('st_'), `token shown: ${value}`)
    const res = await fetch(`${BASE}/api/v1/projects`, { headers: { Authorization: `Bearer ${value}` } })
    assert(res.status === 200, `the new token answered ${res.status}`)
    await page.getByRole('button', { name: 'Done' }).click()
    assert((await page.getByTestId('new-token').count()) === 0, 'the value is still shown')
    await page.getByRole('button', { name: 'Revoke token ci' }).click()
    await page.getByRole('dialog', { name: 'Revoke this token?' }).getByRole('button', { name: 'Revoke' }).click()
    await page.getByRole('row', { name: /ci #\d+ .* revoked/ }).waitFor(WAIT)
    const after = await fetch(`${BASE}/api/v1/projects`, { headers: { Authorization: `Bearer ${value}` } })
    assert(after.status === 401, `the revoked token answered ${after.status}`)
  })

  await step('the server closes the WebSocket (4008): offline shown, reconnect from the cursor, nothing missed', async () => {
    const p = await context.newPage()
    const urls = []
    let closeFirst = null
    await p.routeWebSocket(/\/api\/v1\/events\/ws/, (ws) => {
      urls.push(ws.url())
      const server = ws.connectToServer()
      if (!closeFirst) {
        closeFirst = () => {
          server.close()
          ws.close({ code: 4008, reason: 'too far behind: reconnect with after=<last id>' })
        }
      }
    })
    await p.goto(`${BASE}/`)
    await p.locator('[data-live="live"]').waitFor(WAIT)
    await p.evaluate(() => {
      window.__liveStates = []
      const el = document.querySelector('[data-live]')
      new MutationObserver(() => window.__liveStates.push(el.dataset.live)).observe(el, { attributes: true })
    })
    closeFirst()
    const t = await api('POST', '/spec-tasks', { project_id: PROJECT, title: 'Made while the page was offline', prompt: 'x', priority: 'critical' })
    await p.locator(`[data-task-id="${t.id}"]`).waitFor(WAIT)
    await p.locator('[data-live="live"]').waitFor(WAIT)
    const states = await p.evaluate(() => window.__liveStates)
    assert(states.includes('offline'), `states seen: ${states}`)
    assert(urls.length === 2, `connections: ${urls.join(', ')}`)
    const [a, b] = urls.map((u) => Number(new URL(u).searchParams.get('after')))
    assert(b >= a, `reconnected with after=${b}, first after=${a}`)
    await p.close()
  })

  await step('sign out: the board and the WebSocket refuse', async () => {
    await page.goto(`${BASE}/`)
    await page.getByRole('button', { name: 'Sign out' }).click()
    await page.waitForURL(/\/sign-in/, WAIT)
    await page.goto(`${BASE}/`)
    await page.waitForURL(/\/sign-in\?next=%2F/, WAIT)
    const status = await page.evaluate(async () => (await fetch('/api/v1/spec-tasks')).status)
    assert(status === 401, `the API answered ${status} after sign-out`)
    const ws = await page.evaluate(
      () =>
        new Promise((resolve) => {
          const s = new WebSocket(`ws://${location.host}/api/v1/events/ws?after=0`)
          s.onopen = () => resolve('open')
          s.onclose = (e) => resolve(`closed ${e.code}`)
        }),
    )
    assert(ws.startsWith('closed'), `the WebSocket ${ws}`)
  })

  await step('a pasted token signs in too', async () => {
    await page.getByLabel('API token').fill(process.env.SPECTASK_TOKEN)
    await page.getByRole('button', { name: 'Sign in' }).click()
    await page.waitForURL(`${BASE}/`, WAIT)
    await page.locator('[data-live="live"]').waitFor(WAIT)
  })

  assert(problems.length === 0, `the page reported problems:\n${problems.join('\n')}`)
  console.log(`screenshots in ${SHOTS}`)
}
