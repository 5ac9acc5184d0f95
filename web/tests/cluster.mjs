// The cluster page in real headless Chromium, against two `spectask serve --cluster`
// replicas (a and b, room for one task each) on one PostgreSQL database and one
// plain server (tests/dashboard_cluster.rs starts them):
//
//   three one-step plans whose step sleeps are imported and approved through replica
//   a: each replica takes one, the third waits → signed in on a, the settings nav's
//   "Cluster" link opens /settings/cluster: connected to replica a, both replicas
//   running (a text label), each held task under its replica with fence, time held
//   and lease expiry, the third among the waiting, each a link; one opened with the
//   keyboard goes to the task page → the page asks again on its own (heartbeats are
//   not events) → screenshots (light/dark, 1280×800 and 375 px; no horizontal
//   overflow at 375 px) → a held task cancelled through the API leaves its
//   replica's card and the waiting one moves in, with no reload → the plain
//   server's page says it runs alone.
//
// Env: SPECTASK_URL, SPECTASK_SIGN_IN, SPECTASK_TOKEN (replica a), SPECTASK_REPO,
// SPECTASK_ALONE_URL, SPECTASK_ALONE_SIGN_IN, SPECTASK_SCREENSHOTS.
// Every wait is on a DOM state or an API state, with a timeout.
import { BASE, SHOTS, api, assert, launch, required, step, until, runScenario, eachLook } from './lib.mjs'

const LINK = required('SPECTASK_SIGN_IN')
const REPO = required('SPECTASK_REPO')
const ALONE = required('SPECTASK_ALONE_URL').replace(/\/$/, '')
const ALONE_LINK = required('SPECTASK_ALONE_SIGN_IN')
const WAIT = { timeout: 60_000 }
const TITLE = 'Long task'

const REQUIREMENTS = `# Requirements Document

## Introduction

A long task.

## Requirements

### Requirement 1: Wait

**User Story:** As an operator, I want a task that runs for a while, so that I can see who holds it.

#### Acceptance Criteria

1. WHEN the task runs THEN the system SHALL wait
`

const PLAN = `# Implementation Plan

- [ ] 1. Wait a long time
  - sleep 600000
  - _Requirements: 1.1_
`

const browser = await launch()
await runScenario(browser, run)

async function run() {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } })
  const page = await context.newPage()
  const problems = []
  const watch = (p) => {
    p.on('pageerror', (e) => problems.push(`page error: ${e.message}`))
    p.on('console', (m) => {
      if (m.type() === 'error' && !/401|403|404|Failed to load resource|WebSocket/.test(m.text())) problems.push(`console: ${m.text()}`)
    })
  }
  watch(page)
  let clusterAsks = 0
  page.on('request', (r) => {
    if (new URL(r.url()).pathname === '/api/v1/cluster') clusterAsks += 1
  })

  const tasks = await step('three one-step plans (their step sleeps) imported and approved through replica a', async () => {
    const project = await api('POST', '/projects', { path: REPO })
    const out = []
    for (const n of [1, 2, 3]) {
      const t = await api('POST', '/spec-tasks/import', {
        project_id: project.id,
        title: `${TITLE} ${n}`,
        files: { 'requirements.md': REQUIREMENTS, 'design.md': '# Design\n\nOne step that waits.\n', 'tasks.md': PLAN },
      })
      assert(t.status === 'spec_review', `imported task is ${t.status}`)
      await api('POST', `/spec-tasks/${t.id}/approve`)
      out.push(t)
    }
    return out
  })

  const holderOf = (s, id) => s.replicas.find((r) => r.tasks.some((l) => l.spec_task_id === id))?.id
  const status = await step('each replica takes one (room for one each), the third waits; both are running', async () => {
    const s = await until('two held tasks and one waiting', async () => {
      const s = await api('GET', '/cluster')
      const running = s.replicas.filter((r) => r.state === 'running').map((r) => r.id).sort()
      const held = tasks.filter((t) => holderOf(s, t.id))
      return running.join() === 'a,b' && held.length === 2 && s.unowned.length === 1 ? s : null
    })
    assert(s.replica === 'a', `replica a says it is ${s.replica}`)
    return s
  })
  const task = tasks.find((t) => holderOf(status, t.id))
  const holder = holderOf(status, task.id)
  const waiting = tasks.find((t) => t.id === status.unowned[0])
  assert(waiting, `unowned ${status.unowned} is none of ours`)
  console.log(`   (replica ${holder} holds task ${task.id}; task ${waiting.id} waits)`)

  await step('sign in on replica a', async () => {
    await page.goto(LINK)
    await page.waitForURL(`${BASE}/`, WAIT)
    await page.locator('[data-live="live"]').waitFor(WAIT)
  })

  await step('the settings nav links to the cluster page', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Tokens' }).click()
    await page.waitForURL(`${BASE}/settings/tokens`, WAIT)
    const link = page.getByRole('navigation', { name: 'Settings' }).getByRole('link', { name: 'Cluster' })
    await link.click()
    await page.waitForURL(`${BASE}/settings/cluster`, WAIT)
    await page.getByRole('heading', { level: 1, name: 'Cluster' }).waitFor(WAIT)
    assert((await link.getAttribute('aria-current')) === 'page', 'the Cluster tab is the current one')
  })

  const card = (id) => page.getByRole('listitem', { name: id, exact: true })

  await step('connected to replica a; both replicas listed as running, in words', async () => {
    const me = page.getByTestId('cluster-me')
    await me.waitFor(WAIT)
    assert((await me.textContent()) === 'a', `connected to ${await me.textContent()}`)
    for (const id of ['a', 'b']) {
      const c = card(id)
      await c.waitFor(WAIT)
      assert((await c.getAttribute('data-state')) === 'running', `replica ${id} is ${await c.getAttribute('data-state')}`)
      const label = (await c.locator('.replica-state').textContent())?.trim()
      assert(label === 'Running', `replica ${id}'s state label: ${label}`)
      const facts = await c.locator('.replica-facts').innerText()
      assert(/Heartbeat\s+(just now|\d+ s ago)/i.test(facts), `replica ${id}'s heartbeat: ${facts}`)
      assert(/1 of 1 task\b/.test(facts), `replica ${id}'s load: ${facts}`)
    }
    assert((await card('a').getByText('this dashboard').count()) === 1, 'replica a is marked as this dashboard’s')
    assert((await card('b').getByText('this dashboard').count()) === 0, 'replica b is not')
  })

  const taskLink = card(holder).getByRole('link', { name: `#${task.id} ${task.title}` })

  await step(`the held task under replica ${holder}: fence, time held, lease expiry`, async () => {
    await taskLink.waitFor(WAIT)
    const other = holder === 'a' ? 'b' : 'a'
    assert((await card(other).locator(`[data-task-link="${task.id}"]`).count()) === 0, `replica ${other} lists the task too`)
    const row = card(holder).locator(`[data-lease="${task.id}"]`)
    assert(/^\d+$/.test((await row.locator('.l-fence').innerText()).trim()), 'a fence number')
    assert(/^(under 1 s|\d+ s|\d+ min( \d+ s)?)$/.test((await row.locator('.l-held').innerText()).trim()), `held: ${await row.locator('.l-held').innerText()}`)
    assert(/^expires in (under 1 s|\d+ s)$/.test((await row.locator('.l-expires').innerText()).trim()), `expiry: ${await row.locator('.l-expires').innerText()}`)
    assert((await card(holder).getByText('1 of 1 task').count()) === 1, 'its load counts the task')
  })

  await step('the third task among those waiting for a replica with room, as a link', async () => {
    const list = page.getByRole('list', { name: 'Waiting for a replica with room' })
    await list.getByRole('link', { name: `#${waiting.id} ${waiting.title}` }).waitFor(WAIT)
    assert((await list.getByRole('listitem').count()) === 1, 'one task waits')
  })

  await step('the page asks again on its own (heartbeats are not events)', async () => {
    const before = clusterAsks
    await until('two more GET /cluster', () => (clusterAsks >= before + 2 ? true : null), 10_000)
  })

  await step('screenshots: light and dark, 1280×800 and 375 px; no horizontal scroll at 375 px', async () => {
    await eachLook(page, async (scheme, size) => {
      await taskLink.waitFor(WAIT)
      await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))))
      const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor)
      const [r, g, b] = bg.match(/\d+/g).map(Number)
      const dark = (r + g + b) / 3 < 80
      assert(dark === (scheme === 'dark'), `${scheme}: the page's background is ${bg}`)
      if (size === 'mobile') {
        const widths = await page.evaluate(() => ({ doc: document.documentElement.scrollWidth, view: document.documentElement.clientWidth }))
        assert(widths.doc <= widths.view, `at 375 px the page scrolls sideways: ${JSON.stringify(widths)}`)
        const box = await taskLink.boundingBox()
        assert(box && box.x >= 0 && box.x + box.width <= 375, `the task link is off screen: ${JSON.stringify(box)}`)
      }
      await page.screenshot({ path: `${SHOTS}/cluster-${scheme}-${size}.png`, fullPage: true })
    })
  })

  await step('the task link opens the task page, from the keyboard', async () => {
    await taskLink.focus()
    await page.keyboard.press('Enter')
    // The task page may go on to the tab for its status (…/implementation).
    await page.waitForURL(new RegExp(`^${BASE}/tasks/${task.id}(/[a-z]+)?$`), WAIT)
    await page.getByRole('heading', { level: 1, name: task.title }).waitFor(WAIT)
    await page.goBack()
    await page.waitForURL(`${BASE}/settings/cluster`, WAIT)
    await taskLink.waitFor(WAIT)
  })

  await step('a held task cancelled through the API leaves; the waiting one moves in, with no reload', async () => {
    await page.evaluate(() => (window.__sameDocument = true))
    await api('POST', `/spec-tasks/${task.id}/cancel`, {})
    await card(holder).locator(`[data-task-link="${task.id}"]`).waitFor({ state: 'detached', ...WAIT })
    await page.locator(`.replica [data-task-link="${waiting.id}"]`).waitFor(WAIT)
    await page.getByText('No task is waiting').waitFor(WAIT)
    assert(await page.evaluate(() => window.__sameDocument === true), 'the page reloaded')
  })

  await step('a server without --cluster says it runs alone', async () => {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } })
    const p = await ctx.newPage()
    watch(p)
    await p.goto(ALONE_LINK)
    await p.waitForURL(`${ALONE}/`, WAIT)
    await p.goto(`${ALONE}/settings/cluster`)
    await p.getByRole('heading', { level: 1, name: 'Cluster' }).waitFor(WAIT)
    const alone = p.getByTestId('cluster-alone')
    await alone.waitFor(WAIT)
    const text = await alone.innerText()
    assert(text.includes('This server runs alone'), `alone: ${text}`)
    assert(text.includes('spectask serve --cluster') && text.includes('PostgreSQL'), `how to run a cluster: ${text}`)
    assert((await p.locator('[data-replica]').count()) === 0, 'a lone server lists replicas')
    await p.screenshot({ path: `${SHOTS}/cluster-alone-light-desktop.png` })
    await p.setViewportSize({ width: 375, height: 812 })
    await p.emulateMedia({ colorScheme: 'dark' })
    await p.screenshot({ path: `${SHOTS}/cluster-alone-dark-mobile.png` })
    await ctx.close()
  })

  await step('no errors in the page', async () => {
    assert(problems.length === 0, problems.join('\n'))
  })
  console.log(`screenshots in ${SHOTS}`)
}
