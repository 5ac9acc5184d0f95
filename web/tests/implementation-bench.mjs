// The implementation tab of a 50-task plan in headless Chromium: navigation →
// the tab rendered (every graph node, the session tree, the plan's rows). Prints
// median and p95 over several runs of three ways to it: a page load of the tab's
// address; in the app, a click on the task's card on the board; in the app, a click
// on the Implementation tab from the task's History tab.
//
//   cargo build && node web/tests/implementation-bench.mjs   # starts target/debug/spectask itself
//
// The plan is real: a spec with a 50-task tasks.md (ten layers of five, each task
// waiting for two of the layer before, two sub-items each) imported through
// `POST /spec-tasks/import` and approved, run by the scripted agent, whose sessions
// hang so the first tasks stay in progress while the page loads.
//
// Env: BENCH_TASKS (default 50), BENCH_RUNS (default 10), SPECTASK_BIN (default
// target/release then target/debug), SPECTASK_AGENT (the scripted agent; default
// beside the binary).
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { runBench, signIn, startServer } from './lib.mjs'

const N = Number(process.env.BENCH_TASKS ?? 50)
const RUNS = Number(process.env.BENCH_RUNS ?? 10)
const GOAL_MS = 500

const REQUIREMENTS = `# Requirements Document

## Introduction

A large plan.

## Requirements

### Requirement 1: Everything

**User Story:** As a user, I want everything, so that nothing is missing.

#### Acceptance Criteria

1. WHEN a user asks THEN the system SHALL answer
`

function plan(n) {
  const lines = ['# Implementation Plan', '']
  for (let i = 1; i <= n; i++) {
    const layer = Math.floor((i - 1) / 5)
    // The first layer runs side by side (P); the others name what they wait for.
    const p = layer === 0 && i > 1 ? ' (P)' : ''
    lines.push(`- [ ] ${i}. Task ${i}: ${['schema', 'handler', 'view', 'tests', 'docs'][i % 5]} of part ${layer + 1}${p}`)
    lines.push(`  - [ ] ${i}.1 First half`)
    lines.push(`  - [ ] ${i}.2 Second half`)
    lines.push('  - hang')
    if (layer > 0) {
      const prev = (layer - 1) * 5
      const deps = [...new Set([prev + (i % 5) + 1, prev + ((i + 1) % 5) + 1])].filter((d) => d < i)
      lines.push(`  - _Depends: ${deps.join(', ')}_`)
    }
  }
  return lines.join('\n') + '\n'
}

const quantile = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)]
}

async function main() {
  // The implementation prompt is the task's details: the scripted agent hangs.
  const { base, api, project } = await startServer({
    name: 'impl-bench',
    agentEnv: 'SPECTASK_AGENT',
    files: { '.spectask/implementation.md': '{{details}}\n' },
  })
  await api('PATCH', `/projects/${project.id}`, { max_parallel_sessions: 3 })
  const task = await api('POST', '/spec-tasks/import', {
    project_id: project.id,
    title: `A ${N}-task plan`,
    files: { 'requirements.md': REQUIREMENTS, 'design.md': '# Design\n\nMany parts.\n', 'tasks.md': plan(N) },
  })
  await api('POST', `/spec-tasks/${task.id}/approve`)
  // Sessions at work, so the tree, the running list and the agent panel have content.
  const deadline = Date.now() + 60_000
  let overview
  for (;;) {
    overview = await api('GET', `/spec-tasks/${task.id}/overview`)
    if (overview.progress.sessions_running > 0 && overview.instance?.status === 'ready') break
    if (Date.now() > deadline) throw new Error('no session started within 60 s')
    await new Promise((r) => setTimeout(r, 200))
  }
  if (overview.graph.nodes.length !== N) throw new Error(`the plan has ${overview.graph.nodes.length} tasks, not ${N}`)

  const { browser, context } = await signIn({ base, api })

  // The tab is rendered: every graph node, the plan's rows, a session in the tree and
  // the agent ready. Checked on every frame; the time is taken in the frame the tab is
  // complete in (not after the answer travels back to this script).
  const rendered = async (page) => {
    const done = await page.waitForFunction(
      (n) =>
        document.querySelectorAll('.gnode[data-key]').length === n &&
        document.querySelectorAll('.iplan-task').length === n &&
        document.querySelector('[data-testid="session-tree"] [data-session-id]') !== null &&
        document.querySelector('[data-testid="agent-panel"][data-instance-status="ready"]') !== null &&
        performance.now(),
      N,
      { timeout: 60_000, polling: 'raf' },
    )
    return done.jsonValue()
  }
  // In the app: the page is loaded and settled, a real click on a link (its event's
  // time is the start), the router changes the route and the tab renders.
  const clickTo = async (page, link) => {
    await page.evaluate(() => {
      window.__clickAt = null
      document.addEventListener('click', (e) => (window.__clickAt = e.timeStamp), { capture: true, once: true })
    })
    await link.click()
    const doneAt = await rendered(page)
    if (!page.url().endsWith(`/tasks/${task.id}/implementation`)) throw new Error(`the click led to ${page.url()}`)
    return doneAt - (await page.evaluate(() => window.__clickAt))
  }

  const times = []
  const parts = { script: [], overview: [], render: [] }
  const fromBoard = []
  const fromTab = []
  for (let run = 0; run < RUNS; run++) {
    const page = await context.newPage()
    await page.goto(`${base}/tasks/${task.id}/implementation`, { waitUntil: 'commit' })
    const doneAt = await rendered(page)
    const t = await page.evaluate((doneAt) => {
      const start = performance.getEntriesByType('navigation')[0]?.startTime ?? 0
      const res = performance.getEntriesByType('resource')
      const first = res.find((r) => r.name.includes('/api/v1/'))
      const ov = res.find((r) => r.name.endsWith('/overview'))
      return { ready: doneAt - start, script: (first?.startTime ?? 0) - start, ovStart: (ov?.startTime ?? 0) - start, ovEnd: (ov?.responseEnd ?? 0) - start }
    }, doneAt)
    times.push(t.ready)
    // Where the time goes: the app's script until its first request; the overview's
    // answer (from its request to its last byte); the tab's render after it.
    parts.script.push(t.script)
    parts.overview.push(t.ovEnd - t.ovStart)
    parts.render.push(t.ready - t.ovEnd)
    await page.close()

    // From the board: its card of the task (whose progress it shows) is clicked.
    const board = await context.newPage()
    await board.goto(`${base}/`)
    const card = board.locator(`#card-${task.id}`)
    await card.waitFor({ timeout: 30_000 })
    await board.locator(`[data-task-id="${task.id}"] .card-progress`).getByText(`0/${N} tasks`).waitFor({ timeout: 30_000 })
    fromBoard.push(await clickTo(board, card))
    await board.close()

    // From another tab of the task: its history, then the Implementation tab.
    const other = await context.newPage()
    await other.goto(`${base}/tasks/${task.id}/history`)
    await other.locator('.timeline .tl-item').first().waitFor({ timeout: 30_000 })
    fromTab.push(await clickTo(other, other.getByRole('navigation', { name: 'Task views' }).getByRole('link', { name: 'Implementation' })))
    await other.close()
  }
  // BENCH_TRACE=dir: Chrome traces of one load, one click from the History tab and one
  // from the board (load-trace.json, click-trace.json, board-trace.json; open them in
  // Perfetto or DevTools).
  if (process.env.BENCH_TRACE) {
    mkdirSync(process.env.BENCH_TRACE, { recursive: true })
    const categories = ['devtools.timeline', 'disabled-by-default-devtools.timeline', 'blink.user_timing', 'v8.execute', 'loading']
    const page = await context.newPage()
    await browser.startTracing(page, { path: join(process.env.BENCH_TRACE, 'load-trace.json'), categories })
    await page.goto(`${base}/tasks/${task.id}/implementation`, { waitUntil: 'commit' })
    await rendered(page)
    await browser.stopTracing()
    await page.goto(`${base}/tasks/${task.id}/history`)
    await page.locator('.timeline .tl-item').first().waitFor({ timeout: 30_000 })
    await page.evaluate(() => new Promise((r) => setTimeout(r, 500)))
    await browser.startTracing(page, { path: join(process.env.BENCH_TRACE, 'click-trace.json'), categories })
    await clickTo(page, page.getByRole('navigation', { name: 'Task views' }).getByRole('link', { name: 'Implementation' }))
    await browser.stopTracing()
    await page.goto(`${base}/`)
    await page.locator(`[data-task-id="${task.id}"] .card-progress`).getByText(`0/${N} tasks`).waitFor({ timeout: 30_000 })
    await page.evaluate(() => new Promise((r) => setTimeout(r, 500)))
    await browser.startTracing(page, { path: join(process.env.BENCH_TRACE, 'board-trace.json'), categories })
    await clickTo(page, page.locator(`#card-${task.id}`))
    await browser.stopTracing()
    await page.close()
    // And CPU profiles of the same (load.cpuprofile, click.cpuprofile; DevTools opens them).
    const profiled = async (name, page, act) => {
      const cdp = await page.context().newCDPSession(page)
      await cdp.send('Profiler.enable')
      await cdp.send('Profiler.setSamplingInterval', { interval: 200 })
      await cdp.send('Profiler.start')
      await act()
      const { profile } = await cdp.send('Profiler.stop')
      writeFileSync(join(process.env.BENCH_TRACE, name), JSON.stringify(profile))
    }
    const p1 = await context.newPage()
    await profiled('load.cpuprofile', p1, async () => {
      await p1.goto(`${base}/tasks/${task.id}/implementation`, { waitUntil: 'commit' })
      await rendered(p1)
    })
    await p1.goto(`${base}/tasks/${task.id}/history`)
    await p1.locator('.timeline .tl-item').first().waitFor({ timeout: 30_000 })
    await profiled('click.cpuprofile', p1, () =>
      clickTo(p1, p1.getByRole('navigation', { name: 'Task views' }).getByRole('link', { name: 'Implementation' })),
    )
    await p1.close()
  }
  // What 50 tasks look like (target/screenshots/implementation-graph-50.png).
  const page = await context.newPage()
  await page.goto(`${base}/tasks/${task.id}/implementation`)
  await page.locator('[data-testid="task-graph"] .gnode').nth(N - 1).waitFor({ timeout: 60_000 })
  mkdirSync('target/screenshots', { recursive: true })
  await page.locator('section[aria-labelledby="graph-h"]').screenshot({ path: `target/screenshots/implementation-graph-${N}.png` })
  await browser.close()

  const f = (x) => x.toFixed(0)
  const line = (xs) => `median ${f(quantile(xs, 0.5))} ms, p95 ${f(quantile(xs, 0.95))} ms`
  console.log(`\nimplementation tab of a ${N}-task plan (${overview.progress.sessions_running} sessions running), ${RUNS} runs (first cold):`)
  console.log(`  load (navigation → tab rendered): ${line(times)} (goal ≤ ${GOAL_MS})`)
  console.log(`    runs: ${times.map(f).join(', ')}`)
  console.log(
    `    of which (medians): script until its first request ${f(quantile(parts.script, 0.5))} ms, ` +
      `GET …/overview ${f(quantile(parts.overview, 0.5))} ms, render after it ${f(quantile(parts.render, 0.5))} ms`,
  )
  console.log(`  in the app, board card → tab rendered: ${line(fromBoard)}`)
  console.log(`    runs: ${fromBoard.map(f).join(', ')}`)
  console.log(`  in the app, History tab → Implementation tab rendered: ${line(fromTab)}`)
  console.log(`    runs: ${fromTab.map(f).join(', ')}`)
  const ok = [times, fromBoard, fromTab].every((xs) => quantile(xs, 0.5) <= GOAL_MS)
  console.log(ok ? 'within the goal' : 'OUTSIDE the goal')
  return ok
}

await runBench(main)
