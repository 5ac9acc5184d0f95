// The board with 1,000 tasks in headless Chromium: navigation → first contentful
// paint, navigation → every card the board shows rendered (and → all 1,000 after
// "Show more"), and the gzipped JS+CSS the board loads. Prints the figures.
//
//   node web/tests/board-bench.mjs              # starts target/debug/spectask itself
//   SPECTASK_URL=… SPECTASK_TOKEN=… node web/tests/board-bench.mjs   # an existing server
//
// Env: BENCH_TASKS (default 1000), BENCH_RUNS (default 5), SPECTASK_BIN (the binary
// to start when no SPECTASK_URL is given; default target/release then target/debug).
import { gzipSync } from 'node:zlib'
import { apiClient, runBench, signIn, startServer } from './lib.mjs'

const N = Number(process.env.BENCH_TASKS ?? 1000)
const RUNS = Number(process.env.BENCH_RUNS ?? 5)
const GOAL_MS = 500
const GOAL_KB = 250

let base = process.env.SPECTASK_URL?.replace(/\/$/, '')
let token = process.env.SPECTASK_TOKEN
let api = apiClient(base, token)

async function countTasks() {
  let n = 0
  let cursor
  for (;;) {
    const page = await api('GET', `/spec-tasks?limit=200${cursor ? `&cursor=${cursor}` : ''}`)
    n += page.items.length
    if (page.next_cursor == null) return n
    cursor = page.next_cursor
  }
}

async function createTasks(count) {
  const projects = await api('GET', '/projects')
  const project = projects[0]?.id
  if (!project) throw new Error('no project registered')
  const priorities = ['low', 'medium', 'high', 'critical']
  const types = ['feature', 'bugfix', 'refactor']
  let next = 0
  const worker = async () => {
    while (next < count) {
      const i = next++
      await api('POST', '/spec-tasks', {
        project_id: project,
        title: `Bench task ${i + 1}: ${['add', 'fix', 'refactor', 'document'][i % 4]} the ${['login', 'billing', 'search', 'export'][i % 4]} flow`,
        prompt: `Bench task ${i + 1}`,
        priority: priorities[i % 4],
        type: types[i % 3],
      })
    }
  }
  await Promise.all(Array.from({ length: 8 }, worker))
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]
}

async function main() {
  if (!base || !token) {
    ;({ base, token, api } = await startServer())
  }
  const have = await countTasks()
  if (have < N) {
    const t0 = Date.now()
    await createTasks(N - have)
    console.log(`created ${N - have} tasks through the API in ${Date.now() - t0} ms`)
  }
  const total = await countTasks()

  const { browser, context } = await signIn({ base, api })

  const fcp = []
  const ready = []
  const all = []
  let bytes = null
  let shown = 0
  for (let run = 0; run < RUNS; run++) {
    const page = await context.newPage()
    const assets = []
    if (run === 0) {
      page.on('response', async (r) => {
        const type = r.request().resourceType()
        if (type === 'script' || type === 'stylesheet') assets.push(r)
      })
    }
    await page.goto(`${base}/`, { waitUntil: 'commit' })
    // Every card the board shows by default, with the total known to the page.
    await page.waitForFunction(
      (n) => {
        const board = document.querySelector('[data-testid="board"]')
        if (!board || Number(board.dataset.total) !== n) return false
        const counts = [...document.querySelectorAll('.column-count')].reduce((a, e) => a + Number(e.textContent), 0)
        const more = [...document.querySelectorAll('.show-more')].length
        const cards = document.querySelectorAll('[data-task-id]').length
        return counts === n && cards > 0 && (more > 0 || cards === n)
      },
      total,
      { timeout: 60_000, polling: 'raf' },
    )
    const t = await page.evaluate(() => {
      const nav = performance.getEntriesByType('navigation')[0]
      const paint = performance.getEntriesByName('first-contentful-paint')[0]
      return { ready: performance.now() - (nav?.startTime ?? 0), fcp: paint ? paint.startTime : NaN, cards: document.querySelectorAll('[data-task-id]').length }
    })
    fcp.push(t.fcp)
    ready.push(t.ready)
    shown = t.cards
    // Then everything: "Show all" in each column, timed inside the page from the
    // click to the frame after the last card is in the DOM.
    const spent = await page.evaluate(
      (n) =>
        new Promise((resolve) => {
          const t0 = performance.now()
          for (const b of document.querySelectorAll('.show-all')) b.click()
          const check = () => {
            if (document.querySelectorAll('[data-task-id]').length === n) requestAnimationFrame(() => resolve(performance.now() - t0))
            else requestAnimationFrame(check)
          }
          check()
        }),
      total,
    )
    all.push(t.ready + spent)
    if (run === 0) {
      let raw = 0
      let gz = 0
      for (const r of assets) {
        const body = await r.body()
        raw += body.length
        gz += gzipSync(body, { level: 9 }).length
      }
      bytes = { raw, gz, files: assets.map((r) => new URL(r.url()).pathname) }
    }
    await page.close()
  }
  await browser.close()

  const kb = (n) => (n / 1024).toFixed(1)
  console.log(`\nboard with ${total} tasks, ${RUNS} loads (median; first load cold):`)
  console.log(`  navigation → first contentful paint:        ${median(fcp).toFixed(0)} ms   (runs: ${fcp.map((x) => x.toFixed(0)).join(', ')})`)
  console.log(`  navigation → board rendered (${shown} cards):   ${median(ready).toFixed(0)} ms   (runs: ${ready.map((x) => x.toFixed(0)).join(', ')}; goal ≤ ${GOAL_MS})`)
  console.log(`  navigation → all ${total} cards (Show all):  ${median(all).toFixed(0)} ms   (runs: ${all.map((x) => x.toFixed(0)).join(', ')})`)
  console.log(`  JS+CSS the board loads: ${kb(bytes.raw)} KB, ${kb(bytes.gz)} KB gzipped (goal ≤ ${GOAL_KB} KB): ${bytes.files.join(', ')}`)
  const ok = median(ready) <= GOAL_MS && bytes.gz / 1024 <= GOAL_KB
  console.log(ok ? 'within the goals' : 'OUTSIDE the goals')
  return ok
}

await runBench(main)
