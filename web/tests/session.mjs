// The session page in real headless Chromium, against a live `spectask serve` whose
// default agent is the scripted one, the repository's implementation prompt each
// plan task's details, and the project's permission policy `ask`
// (tests/dashboard_session.rs sets it up):
//
//   a one-task plan is imported and approved → its session's page is opened while
//   the agent starts → the transcript streams in with no reload, each refresh asking
//   only for entries after the last (a markdown message, a collapsed thought, a plan,
//   two writes with their diffs, a command's output) while the session is running →
//   the agent's permission request shows with the options it offered; screenshots
//   (light/dark, 1280×800 and 375 px) → "Allow" answers it from the page, the request
//   leaves (a cancel asked for first and declined changes nothing), `permission: allow` follows and the session finishes (completed, live)
//   with its commit, the file it changed and the verification that passed →
//   scrolled up, the list stops following and "Jump to latest" brings it back → a
//   message sent from the page shows among its coordination events.
//
// Env: SPECTASK_URL, SPECTASK_SIGN_IN, SPECTASK_TOKEN, SPECTASK_REPO, SPECTASK_SCREENSHOTS.
// Every wait is on a DOM state or an API state, with a timeout; nothing sleeps.
import { BASE, SHOTS, api, assert, launch, required, step, until, runScenario, eachLook } from './lib.mjs'

const LINK = required('SPECTASK_SIGN_IN')
const REPO = required('SPECTASK_REPO')
const WAIT = { timeout: 60_000 }

const REQUIREMENTS = `# Requirements Document

## Introduction

A greeting.

## Requirements

### Requirement 1: Greeting

**User Story:** As a visitor, I want a greeting, so that I feel welcome.

#### Acceptance Criteria

1. WHEN the page loads THEN the system SHALL show a greeting
`

// The task's details are the scripted agent's commands (`\\n` is a newline in them).
const PLAN = `# Implementation Plan

- [ ] 1. Write the greeting
  - say Starting **the greeting** task
  - think The file does not exist yet, so this is a new file
  - plan Write the greeting | Ask to keep it | Finish
  - sleep 1500
  - write greeting.txt Hello\\nWorld\\n
  - run echo hello from the terminal
  - write greeting.txt Hello\\nthere\\nWorld\\n
  - say Both writes are done; now I ask.
  - ask Keep the greeting?
  - say The greeting is kept.
  - usage 1200 200000 0.01
  - _Requirements: 1.1_
`

const browser = await launch()
await runScenario(browser, run)


async function run() {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } })
  const page = await context.newPage()
  const problems = []
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`))
  page.on('console', (m) => {
    if (m.type() === 'error' && !/401|403|404|Failed to load resource|WebSocket/.test(m.text())) problems.push(`console: ${m.text()}`)
  })
  // Every transcript request the page makes, and how many entries each answer held.
  const pulls = []
  page.on('response', async (r) => {
    const u = new URL(r.url())
    if (!/^\/api\/v1\/sessions\/\d+\/transcript$/.test(u.pathname)) return
    const body = await r.json().catch(() => null)
    pulls.push({ after: Number(u.searchParams.get('after') ?? -1), n: Array.isArray(body) ? body.length : -1, last: body?.at?.(-1)?.id ?? null })
  })

  const project = await step('register the repository: permission policy ask, a verification command', async () => {
    const p = await api('POST', '/projects', { path: REPO, permission_policy: 'ask', verification_command: 'test -f greeting.txt' })
    assert(p.permission_policy === 'ask', `permission_policy ${p.permission_policy}`)
    return p
  })

  const task = await step('import a one-task plan', async () => {
    const t = await api('POST', '/spec-tasks/import', {
      project_id: project.id,
      title: 'Greeting',
      files: { 'requirements.md': REQUIREMENTS, 'design.md': '# Design\n\nOne file.\n', 'tasks.md': PLAN },
    })
    assert(t.status === 'spec_review', `imported task is ${t.status}`)
    return t
  })

  await step('sign in', async () => {
    await page.goto(LINK)
    await page.waitForURL(`${BASE}/`, WAIT)
    await page.locator('[data-live="live"]').waitFor(WAIT)
  })

  const sid = await step('approve; open the session page as soon as the session exists', async () => {
    await api('POST', `/spec-tasks/${task.id}/approve`)
    const s = await until('an implementation session', async () =>
      (await api('GET', `/spec-tasks/${task.id}/sessions`)).find((x) => x.kind === 'implementation'),
    )
    await page.goto(`${BASE}/sessions/${s.id}`)
    await page.locator(`[data-session-id="${s.id}"]`).waitFor(WAIT)
    await page.locator('[data-live="live"]').waitFor(WAIT)
    await page.evaluate(() => {
      window.__sameDocument = true
      // When each text first showed in the transcript, and every status the page showed.
      window.__seen = {}
      window.__statuses = []
      const record = () => {
        // Messages only: the prompt (collapsed) holds the script's words too.
        const t = [...document.querySelectorAll('[data-testid="transcript"] .te-message')].map((m) => m.textContent).join('\n')
        for (const w of ['Starting the greeting task', 'Both writes are done', 'permission: allow', 'The greeting is kept.']) {
          if (!(w in window.__seen) && t.includes(w)) window.__seen[w] = Date.now()
        }
        const st = document.querySelector('[data-session-id]')?.dataset.status
        if (st && window.__statuses.at(-1) !== st) window.__statuses.push(st)
      }
      new MutationObserver(record).observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true })
      record()
    })
    return s.id
  })

  const transcript = page.locator('[data-testid="transcript"]')

  await step('the transcript streams in while the agent runs: markdown, a collapsed thought, a plan', async () => {
    const message = transcript.locator('.te-message', { hasText: 'Starting the greeting task' })
    await message.waitFor(WAIT)
    assert((await message.locator('strong').textContent()) === 'the greeting', 'the message is rendered as markdown')
    const thought = transcript.locator('details.te-thought')
    await thought.waitFor(WAIT)
    assert(!(await thought.evaluate((d) => d.open)), 'the thought is collapsed')
    assert(!(await thought.locator('.te-pre').isVisible()), 'the thought text is hidden')
    await thought.locator('summary').click()
    assert(await thought.locator('.te-pre').isVisible(), 'opening the thought shows it')
    await transcript.locator('.te-plan li', { hasText: 'Ask to keep it' }).waitFor(WAIT)
  })

  await step('each write shows its diff, the run its output; the session is still running', async () => {
    const diffs = transcript.locator('[aria-label="Diff of greeting.txt"]')
    await diffs.nth(1).waitFor(WAIT)
    const first = diffs.nth(0)
    assert((await first.locator('.badge', { hasText: 'new file' }).count()) === 1, 'the first write is a new file')
    assert((await first.locator('.add').textContent()) === '+2', `first diff: ${await first.locator('.diff-stat').textContent()}`)
    const second = diffs.nth(1)
    assert((await second.locator('.add').textContent()) === '+1', `second diff: ${await second.locator('.diff-stat').textContent()}`)
    assert((await second.locator('.del').textContent()) === '−0', 'second diff removes nothing')
    const added = await second.locator('tr.dl-add .dtext').allTextContents()
    assert(added.length === 1 && added[0].endsWith('there'), `added lines: ${added}`)
    const edits = transcript.locator('.te-tool', { has: page.locator('[aria-label="Diff of greeting.txt"]') })
    for (const s of await edits.locator('[data-status]').allTextContents()) assert(s === 'Completed', `edit status ${s}`)
    assert((await edits.first().locator('.tool-paths code').textContent()) === 'greeting.txt', 'the edit names its path')
    await transcript.locator('pre.tool-output', { hasText: 'hello from the terminal' }).waitFor(WAIT)
    const s = await api('GET', `/sessions/${sid}`)
    assert(s.status === 'running', `the session is ${s.status} while its transcript streams`)
  })

  const request = page.locator('[data-testid="permissions"]')
  await step('the permission request waits, with the options the agent offered', async () => {
    await request.locator('.perm-item', { hasText: 'Keep the greeting?' }).waitFor(WAIT)
    const options = await request.locator('.perm-options button').allTextContents()
    assert(JSON.stringify(options) === JSON.stringify(['Allow', 'Reject', 'Cancel request']), `options: ${options}`)
    const pending = await api('GET', '/permissions?status=pending')
    assert(pending.some((p) => p.work_session_id === sid), 'the API has it pending too')
    await transcript.locator('.te-message', { hasText: 'Both writes are done' }).waitFor(WAIT)
  })

  await step('screenshots: the session page, light and dark, 1280×800 and 375 px', async () => {
    // Opening the thought scrolled the list (so it stopped following): back to the tail.
    const jump = page.getByRole('button', { name: 'Jump to latest' })
    if (await jump.count()) await jump.click()
    await eachLook(page, async (scheme, size) => {
      await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))))
      await page.screenshot({ path: `${SHOTS}/session-${scheme}-${size}.png` })
    })
  })

  await step('cancel asks first; "Keep it running" changes nothing', async () => {
    await page.getByRole('button', { name: 'Cancel session' }).click()
    const dialog = page.getByRole('dialog', { name: `Cancel session ${sid}?` })
    await dialog.waitFor(WAIT)
    await dialog.getByRole('button', { name: 'Keep it running' }).click()
    await dialog.waitFor({ state: 'hidden', ...WAIT })
    const s = await api('GET', `/sessions/${sid}`)
    assert(s.status === 'running', `after keeping it: ${s.status}`)
  })

  await step('"Allow" answers it from the page; the session goes on and finishes, live', async () => {
    await request.getByRole('button', { name: 'Allow' }).click()
    await request.waitFor({ state: 'detached', ...WAIT })
    await transcript.locator('.te-message', { hasText: 'permission: allow' }).waitFor(WAIT)
    await transcript.locator('.te-permission', { hasText: 'Keep the greeting?: allow' }).waitFor(WAIT)
    await transcript.locator('.te-message', { hasText: 'The greeting is kept.' }).waitFor(WAIT)
    await page.locator(`[data-session-id="${sid}"][data-status="completed"]`).waitFor(WAIT)
    const answered = await api('GET', '/permissions?status=answered')
    assert(answered.some((p) => p.work_session_id === sid && p.option_id === 'allow'), 'the API has the answer')
    // Its changes: the commit, the file, the verification that passed.
    const changes = page.locator('[data-testid="changes"]')
    await changes.locator('.file-list code', { hasText: 'greeting.txt' }).waitFor(WAIT)
    await changes.locator('.verify .badge', { hasText: 'passed' }).waitFor(WAIT)
    assert((await changes.locator('.verify code').textContent()) === 'test -f greeting.txt', 'the verification command')
    assert((await changes.locator('.commit-list li').count()) >= 1, 'a commit is listed')
    const api_changes = await api('GET', `/sessions/${sid}/changes`)
    assert(api_changes.files.includes('greeting.txt') && api_changes.verification?.passed === true, JSON.stringify(api_changes))
    const statuses = await page.evaluate(() => window.__statuses)
    assert(statuses[0] === 'running' && statuses.at(-1) === 'completed', `statuses shown: ${statuses}`)
  })

  await step('no reload; each transcript request asked only for what came after the last entry it had', async () => {
    assert(await page.evaluate(() => window.__sameDocument === true), 'the page reloaded')
    const seen = await page.evaluate(() => window.__seen)
    // (The first two may come in one answer when the page opened late.)
    assert(seen['Starting the greeting task'] <= seen['Both writes are done'], `order: ${JSON.stringify(seen)}`)
    assert(seen['Both writes are done'] < seen['permission: allow'], `order: ${JSON.stringify(seen)}`)
    assert(pulls.length >= 3, `transcript requests: ${JSON.stringify(pulls)}`)
    // The run may still append (its agent stopping): wait until the page has what the API has.
    const all = await until('the page to have every entry', async () => {
      const entries = await api('GET', `/sessions/${sid}/transcript`)
      return Number(await transcript.getAttribute('data-last-id')) === entries.at(-1).id ? entries : null
    })
    // Each request asks for what follows the newest entry the page has: nothing twice.
    let have = 0
    for (const p of pulls) {
      assert(p.after === have, `asked after ${p.after} with ${have} in hand: ${JSON.stringify(pulls)}`)
      if (p.last != null) have = p.last
    }
    assert(pulls[0].n < all.length, `the first answer held everything (${pulls[0].n} of ${all.length}): nothing streamed`)
    const got = pulls.reduce((a, p) => a + Math.max(0, p.n), 0)
    assert(got === all.length, `the page received ${got} entries, the session has ${all.length}`)
    assert(Number(await transcript.getAttribute('data-count')) === all.length, 'the page counts every entry')
  })

  await step('scrolled up, the list stops following; "Jump to latest" brings it back', async () => {
    await page.setViewportSize({ width: 375, height: 812 })
    const list = transcript.locator('.vlist')
    const scrollable = await list.evaluate((el) => el.scrollHeight > el.clientHeight + 50)
    assert(scrollable, 'the transcript is taller than its box at 375 px')
    await list.evaluate((el) => (el.scrollTop = 0))
    await page.locator('.vlist[data-following="no"]').waitFor(WAIT)
    const jump = page.getByRole('button', { name: 'Jump to latest' })
    await jump.click()
    await page.locator('.vlist[data-following="yes"]').waitFor(WAIT)
    await transcript.locator('.te-message', { hasText: 'The greeting is kept.' }).waitFor({ state: 'visible', ...WAIT })
    assert((await jump.count()) === 0, 'the button left')
    await page.setViewportSize({ width: 1280, height: 800 })
  })

  await step('a message sent from the page shows among its coordination events', async () => {
    await page.getByRole('button', { name: 'Send a message' }).click()
    const dialog = page.getByRole('dialog', { name: `Message session ${sid}` })
    await dialog.getByLabel('Message', { exact: true }).fill('Please also add a farewell.')
    await dialog.getByRole('button', { name: 'Send', exact: true }).click()
    await dialog.waitFor({ state: 'hidden', ...WAIT })
    await page.locator('[data-testid="coordination"] .coord', { hasText: 'Please also add a farewell.' }).waitFor(WAIT)
    const events = await api('GET', `/spec-tasks/${task.id}/coordination`)
    const sent = events.find((e) => e.message === 'Please also add a farewell.')
    assert(sent && sent.to_session_id === sid && sent.kind === 'notification', `sent: ${JSON.stringify(sent)}`)
  })

  assert(problems.length === 0, `console problems:\n${problems.join('\n')}`)
  console.log(`screenshots in ${SHOTS}`)
}
