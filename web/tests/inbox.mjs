// The notification center and the webhooks page in real headless Chromium, against a
// live `spectask serve` whose agent is the scripted one (tests/dashboard_inbox.rs sets
// it up and runs this). The project waits for a person on conflicts and permissions;
// its plan's two parallel tasks write the same file, task 1 after asking a person:
//
//   webhooks added on the page (a receiver this script runs, and one that is down) →
//   the center is empty → two specs ready for review show, one entry opens the spec
//   tab → approved, the permission shows and is answered from the center → the merge
//   conflict shows (badge, entry, a browser notification while the tab is hidden) →
//   retried from the center, a conflict-fixing session resolves it and the run ends
//   in review → the receiver got every notification once, signed; the page shows the
//   deliveries and the down receiver's error; removing a webhook asks first.
//
// Env: SPECTASK_URL, SPECTASK_SIGN_IN, SPECTASK_TOKEN, SPECTASK_REPO, SPECTASK_SCREENSHOTS.
// Every wait is on a DOM state or an API answer, with a timeout; nothing sleeps.
import { createHmac } from 'node:crypto'
import { execFileSync } from 'node:child_process'
import { BASE, SHOTS, api, assert, launch, required, step, until, runScenario, eachLook } from './lib.mjs'
import { closedPort, receiver } from './inbox-lib.mjs'

const LINK = required('SPECTASK_SIGN_IN')
const REPO = required('SPECTASK_REPO')
const WAIT = { timeout: 60_000 }

const hook = await receiver()
const browser = await launch()
await runScenario(browser, run, () => hook.close())

async function run() {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } })
  // A Notifications API that records, and a tab that can be made to look hidden.
  await context.addInitScript(() => {
    window.__notes = []
    window.__hidden = false
    class FakeNotification {
      static permission = 'granted'
      static requestPermission = async () => 'granted'
      constructor(title, options) {
        window.__notes.push({ title, tag: options?.tag, body: options?.body })
      }
      close() {}
    }
    window.Notification = FakeNotification
    Object.defineProperty(document, 'visibilityState', { get: () => (window.__hidden ? 'hidden' : 'visible') })
  })
  const page = await context.newPage()
  const problems = []
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`))
  page.on('console', (m) => {
    if (m.type() === 'error' && !/401|403|Failed to load resource|WebSocket/.test(m.text())) problems.push(`console: ${m.text()}`)
  })
  const bell = page.getByRole('button', { name: /^Notifications, / })
  const panel = page.getByRole('dialog', { name: 'Notifications' })
  const entry = (kind, task) => panel.locator(`[data-kind="${kind}"]`).filter({ hasText: `#${task} ` })
  const openPanel = async () => {
    if (!(await panel.isVisible())) await bell.click()
    await panel.waitFor(WAIT)
  }
  const waiting = async () => Number((await bell.getAttribute('data-count')) ?? -1)

  await step('sign in with the one-time link', async () => {
    await page.goto(LINK)
    await page.waitForURL(`${BASE}/`, WAIT)
    await page.locator('[data-live="live"]').waitFor(WAIT)
  })

  const project = await step('register a project that waits for a person on conflicts and permissions', async () => {
    const p = await api('POST', '/projects', { path: REPO, conflict_policy: 'wait', permission_policy: 'ask' })
    assert(p.settings?.conflict_policy === 'wait' || p.conflict_policy === 'wait', `project: ${JSON.stringify(p)}`)
    return p
  })

  const secret = await step('add a webhook on the webhooks page (reached from the settings tabs); its secret shows once', async () => {
    await page.getByRole('link', { name: 'Tokens', exact: true }).click()
    await page.getByRole('navigation', { name: 'Settings' }).getByRole('link', { name: 'Webhooks' }).click()
    await page.waitForURL(`${BASE}/settings/webhooks`, WAIT)
    await page.getByText('No webhooks yet.').waitFor(WAIT)
    await page.getByLabel('URL').fill('not a url')
    await page.getByRole('button', { name: 'Add webhook' }).click()
    await page.getByRole('alert').filter({ hasText: 'http:// or https://' }).waitFor(WAIT)
    await page.getByLabel('URL').fill(hook.url)
    await page.getByRole('button', { name: 'Add webhook' }).click()
    const dialog = page.getByRole('dialog', { name: 'Webhook added' })
    const s = (await dialog.getByTestId('webhook-secret').textContent()).trim()
    assert(s.length >= 16, `secret: ${s}`)
    await dialog.getByRole('button', { name: 'Done' }).click()
    await page.locator('[data-webhook]').filter({ hasText: hook.url }).getByText('Every kind').waitFor(WAIT)
    return s
  })

  const down = await step('and one for conflicts only, to a receiver that is down, for Slack', async () => {
    const url = `http://127.0.0.1:${await closedPort()}/down`
    await page.getByLabel('URL').fill(url)
    await page.getByLabel('Project').selectOption({ label: project.name })
    await page.getByLabel('Payload').selectOption('slack')
    await page.getByLabel('Merge conflict').check()
    await page.getByRole('button', { name: 'Add webhook' }).click()
    await page.getByRole('dialog', { name: 'Webhook added' }).getByRole('button', { name: 'Done' }).click()
    const card = page.locator('[data-webhook]').filter({ hasText: url })
    await card.getByText('Merge conflict', { exact: true }).waitFor(WAIT)
    const hooks = await api('GET', '/webhooks')
    const w = hooks.find((h) => h.url === url)
    assert(w && w.project_id === project.id && w.format === 'slack' && JSON.stringify(w.kinds) === '["conflict"]', `webhooks: ${JSON.stringify(hooks)}`)
    return w
  })

  await step('the center: n opens it, nothing waits, Esc closes it; browser notifications turned on', async () => {
    await page.getByRole('link', { name: 'Board', exact: true }).click()
    await page.getByRole('button', { name: 'Notifications, none waiting' }).waitFor(WAIT)
    await page.locator('body').click({ position: { x: 5, y: 400 } })
    await page.keyboard.press('n')
    await panel.getByText('Nothing needs you right now').waitFor(WAIT)
    await panel.getByLabel(/Browser notifications/).check()
    assert(await page.evaluate(() => localStorage.getItem('spectask.browser-notifications') === '1'), 'the opt-in was not kept')
    await page.keyboard.press('Escape')
    await panel.waitFor({ state: 'hidden', ...WAIT })
    assert(await page.evaluate(() => document.activeElement?.getAttribute('aria-controls') === 'inbox-panel'), 'focus did not return to the bell')
  })

  const [task, other] = await step('two specs ready for review show in the center, live', async () => {
    const made = []
    for (const title of ['Two sides of a file', 'A spec left in review']) {
      const t = await api('POST', '/spec-tasks', { project_id: project.id, title, prompt: title, priority: 'high' })
      await api('POST', `/spec-tasks/${t.id}/start-planning`)
      made.push(t)
    }
    await openPanel()
    for (const t of made) await entry('spec_review', t.id).waitFor(WAIT)
    assert((await waiting()) === 2, `badge: ${await bell.getAttribute('aria-label')}`)
    assert((await bell.getAttribute('aria-label')) === 'Notifications, 2 waiting', await bell.getAttribute('aria-label'))
    return made
  })

  await step('an entry links to the spec tab', async () => {
    await entry('spec_review', task.id).getByRole('link').first().click()
    await page.waitForURL(`${BASE}/tasks/${task.id}/spec`, WAIT)
    await panel.waitFor({ state: 'hidden', ...WAIT })
    await page.getByRole('button', { name: /Version 1/ }).first().waitFor(WAIT)
  })

  await step('approved (as a script would), its entry leaves the open center; g i: the permission request shows on /inbox', async () => {
    await openPanel()
    await entry('spec_review', task.id).waitFor(WAIT)
    const entryGone = entry('spec_review', task.id).waitFor({ state: 'detached', ...WAIT })
    const t0 = Date.now()
    await api('POST', `/spec-tasks/${task.id}/approve`)
    const t1 = Date.now()
    await entryGone
    console.log(`\n   (approval answered in ${t1 - t0} ms; the entry left the open center ${Date.now() - t1} ms after that)`)
    await page.keyboard.press('Escape')
    await page.keyboard.press('g')
    await page.keyboard.press('i')
    await page.waitForURL(`${BASE}/inbox`, WAIT)
    const inbox = page.getByRole('region', { name: /Notifications/ })
    await inbox.locator('[data-kind="permission"]').getByRole('button', { name: 'Allow: Write the left side?' }).waitFor(WAIT)
    assert((await inbox.locator(`[data-kind="spec_review"]`).filter({ hasText: `#${task.id} ` }).count()) === 0, 'the approved spec still shows')
    await page.screenshot({ path: `${SHOTS}/inbox-page-light-desktop.png` })
  })

  const seenBefore = await page.evaluate(() => window.__notes.length)
  await step('answered from the center; the session goes on and the merge conflicts', async () => {
    await page.evaluate(() => (window.__hidden = true))
    await openPanel()
    await entry('permission', task.id).getByRole('button', { name: 'Allow: Write the left side?' }).click()
    await entry('permission', task.id).waitFor({ state: 'detached', ...WAIT })
    const pending = await api('GET', `/permissions?status=pending&spec_task=${task.id}`)
    assert(pending.length === 0, `still pending: ${JSON.stringify(pending)}`)
    await entry('conflict', task.id).getByRole('button', { name: /^Retry the merge conflict/ }).waitFor(WAIT)
    assert((await waiting()) === 2, `badge: ${await bell.getAttribute('aria-label')}`)
  })

  const conflicted = await step('the conflict is a browser notification (the tab was hidden); nothing old is', async () => {
    const notes = await until('a browser notification', () =>
      page.evaluate(() => window.__notes).then((n) => (n.some((x) => x.tag?.startsWith('conflict:')) ? n : null)),
    )
    await page.evaluate(() => (window.__hidden = false))
    const fresh = notes.slice(seenBefore)
    assert(!notes.some((n) => n.tag?.startsWith('spec_review:') && n.tag.includes(String(other.id))), `an old entry notified: ${JSON.stringify(notes)}`)
    assert(fresh.some((n) => n.title.startsWith('Merge conflict')), JSON.stringify(notes))
    const list = await api('GET', '/notifications')
    const c = list.find((n) => n.kind === 'conflict' && n.spec_task_id === task.id)
    assert(c && c.session_id != null && c.link, `notifications: ${JSON.stringify(list)}`)
    return c
  })

  await step('screenshots of the center: light and dark, 1280×800 and 375 px', async () => {
    await eachLook(page, async (scheme, size) => {
      await openPanel()
      await entry('conflict', task.id).waitFor(WAIT)
      await page.screenshot({ path: `${SHOTS}/inbox-${scheme}-${size}.png` })
    })
  })

  await step('retried from the center: a conflict-fixing session resolves it, the entry goes', async () => {
    await openPanel()
    const t0 = Date.now()
    await entry('conflict', task.id).getByRole('button', { name: /^Retry the merge conflict/ }).click()
    await entry('conflict', task.id).waitFor({ state: 'detached', ...WAIT })
    console.log(`\n   (the conflict's entry left ${Date.now() - t0} ms after Retry was clicked)`)
    const sessions = await api('GET', `/spec-tasks/${task.id}/sessions`)
    const fixer = sessions.find((s) => s.kind === 'merge_conflict')
    assert(fixer && fixer.parent_id === conflicted.session_id, `sessions: ${JSON.stringify(sessions)}`)
  })

  await step('the run goes on to its end: the implementation to review shows, linking to its tab', async () => {
    const review = entry('implementation_review', task.id)
    await review.waitFor(WAIT)
    const t = await api('GET', `/spec-tasks/${task.id}`)
    assert(t.status === 'implementation_review', `status ${t.status}`)
    const both = execFileSync('git', ['-C', REPO, 'show', `${t.branch}:shared.txt`], { encoding: 'utf8' })
    assert(both === 'left\nright\n', `shared.txt on ${t.branch}: ${JSON.stringify(both)}`)
    await review.getByRole('link').first().click()
    await page.waitForURL(`${BASE}/tasks/${task.id}/implementation`, WAIT)
  })

  await step('the receiver got each notification once, signed with the secret', async () => {
    const kinds = ['spec_review', 'permission', 'conflict', 'implementation_review']
    await until('every delivery', () => (kinds.every((k) => hook.received.some((r) => r.json?.kind === k)) ? true : null))
    for (const r of hook.received) {
      const want = `sha256=${createHmac('sha256', secret).update(r.body).digest('hex')}`
      assert(r.headers['x-spectask-signature'] === want, `signature ${r.headers['x-spectask-signature']} for ${r.body}`)
    }
    const keys = hook.received.map((r) => r.json?.key ?? r.json?.notification_key ?? r.body)
    assert(new Set(keys).size === keys.length, `a notification came twice: ${keys.join(', ')}`)
  })

  await step('the webhooks page shows the deliveries, live, and the down receiver’s error', async () => {
    await page.keyboard.press('g')
    await page.keyboard.press('w')
    await page.waitForURL(`${BASE}/settings/webhooks`, WAIT)
    const good = page.locator('[data-webhook]').filter({ hasText: hook.url })
    await until('four delivered rows', async () => ((await good.locator('[data-status="delivered"]').count()) >= 4 ? true : null))
    const bad = page.locator(`[data-webhook="${down.id}"]`)
    await bad.locator('.webhook-error').first().waitFor(WAIT)
    const rows = await bad.locator('[data-delivery]').count()
    assert(rows === 1, `the conflicts-only webhook has ${rows} deliveries`)
  })

  await step('screenshots of the webhooks page: light and dark, 1280×800 and 375 px', async () => {
    await eachLook(page, async (scheme, size) => {
      await page.locator('[data-status="delivered"]').first().waitFor(WAIT)
      await page.screenshot({ path: `${SHOTS}/webhooks-${scheme}-${size}.png`, fullPage: true })
    })
  })

  await step('removing a webhook asks first', async () => {
    await page.getByRole('button', { name: `Remove webhook ${down.url}` }).click()
    const dialog = page.getByRole('dialog', { name: 'Remove this webhook?' })
    await dialog.getByRole('button', { name: 'Keep it' }).click()
    assert((await api('GET', '/webhooks')).some((w) => w.id === down.id), 'kept, yet gone')
    await page.getByRole('button', { name: `Remove webhook ${down.url}` }).click()
    await dialog.getByRole('button', { name: 'Remove', exact: true }).click()
    await page.locator(`[data-webhook="${down.id}"]`).waitFor({ state: 'detached', ...WAIT })
    assert(!(await api('GET', '/webhooks')).some((w) => w.id === down.id), 'still listed by the API')
  })

  await step('no errors in the page', async () => {
    assert(problems.length === 0, problems.join('\n'))
  })
  console.log(`screenshots in ${SHOTS}`)
}
