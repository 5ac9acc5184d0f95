// The implementation tab in real headless Chromium, against a live `spectask serve`
// whose default agent is the scripted one and whose repository's implementation
// prompt is each plan task's details (tests/dashboard_implementation.rs sets it up):
//
//   the diamond plan (six tasks, max parallel 3) is imported and approved while the
//   tab is open → the graph's nodes and the session tree change status live, with no
//   reload (every status each node and session showed is recorded as the DOM
//   changes) → the spawn form refuses a blank name, then spawns a session under a
//   parent and it appears under that parent → screenshots (light/dark, 1280×800 and
//   375 px) → the emergency stop-all stops the agents of both running tasks (the
//   panel says so, the API too) → a graph node opens its session's page → a spec-kit
//   plan with two phases draws a labelled band per phase, its tasks in its columns.
//
// Env: SPECTASK_URL, SPECTASK_SIGN_IN, SPECTASK_TOKEN, SPECTASK_REPO, SPECTASK_SCREENSHOTS.
// Every wait is on a DOM state or an API state, with a timeout; nothing sleeps.
import { BASE, SHOTS, api, assert, launch, required, step, until, runScenario, eachLook } from './lib.mjs'

const LINK = required('SPECTASK_SIGN_IN')
const REPO = required('SPECTASK_REPO')
const WAIT = { timeout: 60_000 }

const REQUIREMENTS = `# Requirements Document

## Introduction

Users log in to see their data.

## Requirements

### Requirement 1: Log in

**User Story:** As a user, I want to log in, so that I can see my data.

#### Acceptance Criteria

1. WHEN a user submits valid credentials THEN the system SHALL start a session
2. IF the credentials are wrong THEN the system SHALL refuse the login
`

// The diamond: 1 → (2, 3, 4, 6), (2, 3, 4) → 5. Each task's details are the scripted
// agent's commands; the sleeps keep each state on screen long enough to be seen, and
// the join hangs so the run is still going when everything is stopped.
const DIAMOND = `# Implementation Plan

- [ ] 1. Base
  - write base.txt base
  - sleep 1500
- [ ] 2. Left
  - write left.txt left
  - sleep 2500
  - _Depends: 1_
- [ ] 3. Right (P)
  - write right.txt right
  - sleep 2500
- [ ] 4. Middle (P)
  - write middle.txt middle
  - sleep 2500
- [ ] 5. Join
  - write join.txt join
  - hang
  - _Depends: 2, 3, 4_
- [ ] 6. Docs
  - write docs.txt docs
  - sleep 1500
  - _Depends: 1_
`

const HOLD = `# Implementation Plan

- [ ] 1. Hold
  - write hold.txt hold
  - hang
`

// Spec-kit's form: two phases, each a barrier; [P] runs beside the task before it.
const PHASED = `# Tasks: Phased

## Phase 1: Setup

- [ ] T001 Create the project
  - write setup.txt setup
- [ ] T002 [P] Configure lint
  - write lint.txt lint

## Phase 2: Core

- [ ] T003 Build the core
  - write core.txt core
- [ ] T004 [P] Core tests
  - write core-tests.txt tests
- [ ] T005 Wire it up
  - write wire.txt wire
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

  const project = await step('register the repository, max parallel sessions 3', async () => {
    const p = await api('POST', '/projects', { path: REPO })
    const patched = await api('PATCH', `/projects/${p.id}`, { max_parallel_sessions: 3 })
    assert(patched.max_parallel_sessions === 3, `max_parallel_sessions ${patched.max_parallel_sessions}`)
    return p
  })

  const task = await step('import the diamond plan', async () => {
    const t = await api('POST', '/spec-tasks/import', {
      project_id: project.id,
      title: 'Diamond',
      files: { 'requirements.md': REQUIREMENTS, 'design.md': '# Design\n\nSix files.\n', 'tasks.md': DIAMOND },
    })
    assert(t.status === 'spec_review', `imported task is ${t.status}`)
    return t
  })

  await step('sign in and open the implementation tab before the run starts', async () => {
    await page.goto(LINK)
    await page.waitForURL(`${BASE}/`, WAIT)
    await page.goto(`${BASE}/tasks/${task.id}/implementation`)
    await page.locator('[data-testid="implementation"]').waitFor(WAIT)
    await page.locator('[data-live="live"]').waitFor(WAIT)
    await page.evaluate(() => {
      window.__sameDocument = true
      // Every status each graph node and each session row shows, in order, as the DOM changes.
      window.__nodes = {}
      window.__sessions = {}
      const record = () => {
        for (const n of document.querySelectorAll('.gnode[data-key]')) {
          const seen = (window.__nodes[n.dataset.key] ??= [])
          const cls = [...n.classList].find((c) => c.startsWith('gnode-'))
          if (cls && seen.at(-1) !== cls) seen.push(cls)
        }
        for (const s of document.querySelectorAll('[data-session-id][data-status]')) {
          const seen = (window.__sessions[s.dataset.sessionId] ??= [])
          if (seen.at(-1) !== s.dataset.status) seen.push(s.dataset.status)
        }
      }
      new MutationObserver(record).observe(document.body, {
        subtree: true,
        childList: true,
        attributes: true,
        attributeFilter: ['class', 'data-status'],
      })
      record()
    })
  })

  await step('approve: the graph appears with six nodes, live', async () => {
    await api('POST', `/spec-tasks/${task.id}/approve`)
    await page.locator('.gnode[data-key]').nth(5).waitFor(WAIT)
    assert((await page.locator('.gnode[data-key]').count()) === 6, 'six nodes')
    assert((await page.locator('[data-testid="task-graph"] path.tedge').count()) === 7, 'seven edges (1→2,3,4,6; 2,3,4→5)')
    assert((await page.locator('.tband').count()) === 0, 'a plan without phases has no phase bands')
  })

  // A second task whose agent hangs, so stop-all has more than one agent to stop.
  const hold = await step('a second task runs an agent that hangs', async () => {
    const t = await api('POST', '/spec-tasks/import', {
      project_id: project.id,
      title: 'Hold',
      files: { 'requirements.md': REQUIREMENTS, 'design.md': '# Design\n\nOne file.\n', 'tasks.md': HOLD },
    })
    await api('POST', `/spec-tasks/${t.id}/approve`)
    return t
  })

  const base = await step('task 1 runs and merges; 2, 3, 4 and 6 start, at most 3 at once', async () => {
    await page.locator('.gnode[data-key="1"].gnode-done').waitFor(WAIT)
    await page.locator('.gnode[data-key="2"].gnode-in_progress, .gnode[data-key="2"].gnode-done').waitFor(WAIT)
    const overview = await api('GET', `/spec-tasks/${task.id}/overview`)
    const s = overview.progress.tasks.find((t) => t.key === '1').session_ids.at(-1)
    await page.locator(`[data-session-id="${s}"][data-status="completed"]`).waitFor(WAIT)
    return s
  })

  await step('the spawn form refuses a blank name, then spawns a session under its parent', async () => {
    await page.getByText('Spawn a session', { exact: true }).click()
    await page.getByLabel('Prompt', { exact: true }).fill('write extra.txt extra\nsleep 1000')
    await page.getByRole('button', { name: 'Spawn session' }).click()
    await page.locator('.field-error').filter({ hasText: 'name: must not be blank' }).waitFor(WAIT)
    await page.getByLabel('Name', { exact: true }).fill('Extra notes')
    await page.getByLabel('Parent', { exact: true }).selectOption(String(base))
    await page.locator('.spawn-deps label').filter({ hasText: 'task 1' }).first().locator('input').check()
    await page.getByRole('button', { name: 'Spawn session' }).click()
    const child = page.locator(`[data-session-id="${base}"] [data-session-id]`).filter({ hasText: 'Extra notes' })
    await child.waitFor(WAIT)
    const id = Number(await child.getAttribute('data-session-id'))
    const s = await api('GET', `/sessions/${id}`)
    assert(s.parent_id === base && s.kind === 'spawned', `spawned session: ${JSON.stringify(s)}`)
    await page.locator(`.gnode[data-key="S1"]`).waitFor(WAIT)
  })

  await step('2, 3, 4 and 6 merge and the join starts: every change seen live, no reload', async () => {
    await page.locator('.gnode[data-key="5"].gnode-in_progress').waitFor(WAIT)
    for (const k of ['2', '3', '4', '6']) await page.locator(`.gnode[data-key="${k}"].gnode-done`).waitFor(WAIT)
    const nodes = await page.evaluate(() => window.__nodes)
    // Task 1 starts as the plan is made, so it may be in progress on its first frame.
    assert(/gnode-in_progress.*gnode-done/.test(nodes['1'].join(' ')), `node 1 went ${nodes['1']}`)
    for (const k of ['2', '3', '4', '6']) {
      const seen = nodes[k].join(' ')
      assert(/gnode-pending.*gnode-in_progress.*gnode-done/.test(seen), `node ${k} went ${seen}`)
    }
    assert(/gnode-pending.*gnode-in_progress/.test(nodes['5'].join(' ')), `node 5 went ${nodes['5']}`)
    const sessions = await page.evaluate(() => window.__sessions)
    const merged = Object.values(sessions).filter((seen) => seen.includes('running') && seen.at(-1) === 'completed')
    assert(merged.length >= 5, `sessions seen running then completed: ${JSON.stringify(sessions)}`)
    // At most three plan sessions worked at once (what the graph showed).
    const events = await api('GET', `/events?spec_task=${task.id}&limit=1000`)
    let running = 0
    let most = 0
    for (const e of events.items) {
      if (e.kind !== 'implementation_task.status_changed') continue
      if (e.data.to === 'in_progress') most = Math.max(most, ++running)
      else if (['done', 'failed', 'skipped', 'cancelled'].includes(e.data.to)) running--
    }
    assert(most <= 3 && most >= 2, `most at once: ${most}`)
    assert(await page.evaluate(() => window.__sameDocument === true), 'the page reloaded')
    // The critical path is what is left: the join (and the spawned session, if it still runs).
    assert((await page.locator('.gnode.crit').count()) >= 1, 'a critical path is drawn')
    assert((await page.locator('.gnode[data-key="1"].crit').count()) === 0, 'a done task is off the critical path')
  })

  await step('the agent panel: ready, a pid, threads', async () => {
    await page.locator('[data-testid="agent-panel"][data-instance-status="ready"]').waitFor(WAIT)
    const instance = await api('GET', `/spec-tasks/${task.id}/agent`)
    await page.locator('.agent-facts').filter({ hasText: String(instance.pid) }).waitFor(WAIT)
    await page.locator('.threads li').first().waitFor(WAIT)
  })

  await step('screenshots: implementation tab, light and dark, 1280×800 and 375 px', async () => {
    // A full-page shot repeats a sticky top bar mid-page: keep it at the top for these.
    const unstick = await page.addStyleTag({ content: '.topbar { position: static !important; }' })
    await eachLook(page, async (scheme, size) => {
      await page.locator('[data-testid="task-graph"]').waitFor(WAIT)
      if (size === 'mobile') {
        // Nothing wider than the screen: the graph scrolls inside its own box.
        const wide = await page.evaluate(() => {
          const w = document.documentElement.clientWidth
          return [...document.querySelectorAll('body *')]
            .filter((e) => e.getBoundingClientRect().right > w + 1 && !e.closest('.tgraph-scroll'))
            .slice(0, 5)
            .map((e) => `${e.tagName.toLowerCase()}.${[...e.classList].join('.')} → ${Math.round(e.getBoundingClientRect().right)}`)
        })
        assert(wide.length === 0, `wider than 375 px: ${wide.join('; ')}`)
      }
      await page.screenshot({ path: `${SHOTS}/implementation-${scheme}-${size}.png`, fullPage: true })
    })
    await unstick.evaluate((el) => el.remove())
  })

  const join = await step('a request to people is answered from the timeline; a held session is unblocked', async () => {
    const overview = await api('GET', `/spec-tasks/${task.id}/overview`)
    const j = overview.progress.tasks.find((t) => t.key === '5').session_ids.at(-1)
    const req = await api('POST', `/spec-tasks/${task.id}/coordination`, {
      kind: 'request',
      from_session_id: j,
      message: 'Which port should the join listen on?',
    })
    const row = page.locator(`[data-coordination-id="${req.id}"]`)
    await row.getByRole('button', { name: 'Answer' }).click()
    await row.getByLabel(`Answer to session #${j}`).fill('Port 8080')
    await row.getByRole('button', { name: 'Send answer' }).click()
    await row.filter({ hasText: 'acknowledged by a person' }).waitFor(WAIT)
    const events = await api('GET', `/spec-tasks/${task.id}/coordination`)
    const answer = events.find((e) => e.kind === 'response' && e.payload?.in_reply_to === req.id)
    assert(answer && answer.to_session_id === j && answer.message === 'Port 8080', `answer: ${JSON.stringify(answer)}`)
    // A blocking event addressed to a session offers Unblock until an unblocked one follows.
    const block = await api('POST', `/spec-tasks/${task.id}/coordination`, {
      kind: 'blocking',
      to_session_id: j,
      message: 'Wait for the schema review',
    })
    const brow = page.locator(`[data-coordination-id="${block.id}"]`)
    await brow.getByRole('button', { name: `Unblock session ${j}` }).click()
    await brow.getByRole('button', { name: `Unblock session ${j}` }).waitFor({ state: 'detached', ...WAIT })
    const after = await api('GET', `/spec-tasks/${task.id}/coordination`)
    const unblocked = after.find((e) => e.id > block.id && e.kind === 'unblocked' && e.to_session_id === j)
    assert(unblocked, `no unblocked event for session ${j}: ${JSON.stringify(after.slice(-3))}`)
    return j
  })

  await step('stop-all, after a confirmation, stops the agents of every task', async () => {
    await until('the second task’s agent to be ready', async () => (await api('GET', `/spec-tasks/${hold.id}/agent`))?.status === 'ready')
    await page.getByRole('button', { name: 'Stop all agents…' }).click()
    const dialog = page.getByRole('dialog', { name: 'Stop every agent?' })
    await dialog.waitFor(WAIT)
    await dialog.getByRole('button', { name: 'Stop all agents' }).click()
    await page.locator('[data-testid="agent-panel"][data-instance-status="stopped"]').waitFor(WAIT)
    await page.locator('[data-testid="instance-status"]').filter({ hasText: 'Stopped' }).waitFor(WAIT)
    await page.locator('[data-testid="instance-held"]').waitFor(WAIT)
    await page.getByText('Stopped 2 agents').waitFor(WAIT)
    for (const t of [task, hold]) {
      const i = await api('GET', `/spec-tasks/${t.id}/agent`)
      assert(i.status === 'stopped' && i.held_at, `task ${t.id} agent: ${JSON.stringify(i)}`)
    }
    // The hanging join was interrupted, not merged.
    await page.locator(`[data-session-id="${join}"][data-status="interrupted"]`).waitFor(WAIT)
  })

  await step('skipping the interrupted join asks first; restarting the agent ends the hold and the run its review', async () => {
    await page.getByRole('button', { name: `Skip session ${join}` }).click()
    const dialog = page.getByRole('dialog', { name: `Skip session #${join}?` })
    await dialog.getByText('cannot be undone').waitFor(WAIT)
    await dialog.getByRole('button', { name: 'Skip', exact: true }).click()
    await page.locator(`[data-session-id="${join}"][data-status="skipped"]`).waitFor(WAIT)
    await page.locator('.gnode[data-key="5"].gnode-skipped').waitFor(WAIT)
    await page.getByRole('button', { name: 'Restart agent' }).click()
    // The hold ends. (Whether "ready" is ever drawn is a race: with the join skipped
    // nothing is left to do, so the run ends at once and its agent is retired.)
    await page.locator('[data-testid="instance-held"]').waitFor({ state: 'detached', ...WAIT })
    const instance = await api('GET', `/spec-tasks/${task.id}/agent`)
    assert(instance.held_at === null, `held_at ${instance.held_at}`)
    await until('the run to reach its review', async () => {
      const t = await api('GET', `/spec-tasks/${task.id}`)
      return t.status === 'implementation_review' || t.status === 'done'
    })
  })

  await step('a graph node opens its session from the keyboard', async () => {
    const overview = await api('GET', `/spec-tasks/${task.id}/overview`)
    const s = overview.progress.tasks.find((t) => t.key === '2').session_ids.at(-1)
    const node = page.locator('.gnode[data-key="2"]')
    const label = await node.getAttribute('aria-label')
    assert(label.includes('Task 2: Left') && label.includes(`opens session ${s}`), `aria-label: ${label}`)
    await node.focus()
    await page.keyboard.press('Enter')
    await page.waitForURL(`${BASE}/sessions/${s}`, WAIT)
  })

  await step('a spec-kit plan with two phases: a labelled band per phase, each phase in columns of its own', async () => {
    const t = await api('POST', '/spec-tasks/import', {
      project_id: project.id,
      title: 'Phased',
      files: { 'requirements.md': REQUIREMENTS, 'design.md': '# Design\n\nTwo phases.\n', 'tasks.md': PHASED },
    })
    await api('POST', `/spec-tasks/${t.id}/approve`)
    await page.goto(`${BASE}/tasks/${t.id}/implementation`)
    // The run goes to its end, so the picture is stable.
    for (const k of ['T001', 'T002', 'T003', 'T004', 'T005']) await page.locator(`.gnode[data-key="${k}"].gnode-done`).waitFor(WAIT)
    const bands = page.locator('[data-testid="task-graph"] .tband')
    assert((await bands.count()) === 2, `${await bands.count()} bands`)
    const seen = await bands.evaluateAll((gs) =>
      gs.map((g) => ({
        phase: g.dataset.phase,
        label: g.querySelector('.tband-label')?.textContent,
        name: g.getAttribute('aria-label'),
        title: g.querySelector('title')?.textContent,
        box: (({ x, y, width, height }) => ({ x, y, width, height }))(g.querySelector('rect').getBBox()),
      })),
    )
    const want = [
      ['Phase 1: Setup', 'T001, T002'],
      ['Phase 2: Core', 'T003, T004, T005'],
    ]
    want.forEach(([phase, keys], i) => {
      const b = seen[i]
      assert(b.phase === phase && b.label === phase, `band ${i}: ${JSON.stringify(b)}`)
      assert(b.name === `${phase}: ${keys.split(', ').length} tasks, ${keys}` && b.title === b.name, `band ${i} name: ${b.name}`)
    })
    // Each phase's nodes sit inside its band; phase 1's columns are left of phase 2's.
    const nodes = await page.locator('.gnode[data-key]').evaluateAll((gs) =>
      Object.fromEntries(
        gs.map((g) => {
          const r = g.querySelector('rect').getBBox()
          const m = g.transform.baseVal.consolidate().matrix
          return [g.dataset.key, { x: m.e + r.x, y: m.f + r.y, width: r.width, height: r.height }]
        }),
      ),
    )
    const inside = (k, b) => {
      const n = nodes[k]
      return n.x >= b.x && n.x + n.width <= b.x + b.width && n.y >= b.y && n.y + n.height <= b.y + b.height
    }
    for (const k of ['T001', 'T002']) assert(inside(k, seen[0].box) && !inside(k, seen[1].box), `${k} in the Setup band: ${JSON.stringify(nodes[k])}`)
    for (const k of ['T003', 'T004', 'T005']) assert(inside(k, seen[1].box) && !inside(k, seen[0].box), `${k} in the Core band: ${JSON.stringify(nodes[k])}`)
    assert(seen[0].box.x + seen[0].box.width < seen[1].box.x, 'the Setup band is left of the Core band, apart')
    await page.getByRole('group', { name: /^Phase 2: Core: 3 tasks/ }).waitFor(WAIT)
    const unstick = await page.addStyleTag({ content: '.topbar { position: static !important; }' })
    await page.emulateMedia({ colorScheme: 'light', reducedMotion: 'reduce' })
    await page.locator('.tgraph').screenshot({ path: `${SHOTS}/implementation-phases-light-desktop.png` })
    await page.setViewportSize({ width: 375, height: 812 })
    await page.emulateMedia({ colorScheme: 'dark', reducedMotion: 'reduce' })
    await page.locator('.tgraph').screenshot({ path: `${SHOTS}/implementation-phases-dark-mobile.png` })
    await unstick.evaluate((el) => el.remove())
    await page.setViewportSize({ width: 1280, height: 800 })
    await page.emulateMedia({ colorScheme: 'light' })
  })

  assert(problems.length === 0, `problems in the page:\n${problems.join('\n')}`)
  console.log(`screenshots in ${SHOTS}`)
}
