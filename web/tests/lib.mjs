// Shared by the browser tests: Debian's Chromium through playwright-core, the API
// with a bearer token (what a script or the CLI would do), and small checks. The
// benches start a server of their own (startServer); the browser tests are given one.
import { chromium } from 'playwright-core'
import { spawn, execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'

// SPECTASK_URL is required by the browser tests (checked when they launch the browser
// or call the API); the benches, which start their own server, import this without it.
export const BASE = (process.env.SPECTASK_URL ?? '').replace(/\/$/, '')
export const TOKEN = process.env.SPECTASK_TOKEN ?? ''
export const SHOTS = process.env.SPECTASK_SCREENSHOTS ?? 'target/screenshots'
export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium'

export function required(name) {
  const v = process.env[name]
  if (!v) {
    console.error(`${name} is not set`)
    process.exit(2)
  }
  return v
}

const BROWSER = {
  executablePath: CHROMIUM,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-dev-shm-usage'],
}

export async function launch() {
  required('SPECTASK_URL')
  mkdirSync(SHOTS, { recursive: true })
  return chromium.launch(BROWSER)
}

/** Calls the API as a script would, with the bearer token. */
export async function api(method, path, body) {
  required('SPECTASK_URL')
  const res = await fetch(`${BASE}/api/v1${path}`, {
    method,
    headers: {
      Authorization: `Bearer ${TOKEN}`,
      ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const text = await res.text()
  const json = text ? JSON.parse(text) : null
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`)
  return json
}

export function assert(cond, message) {
  if (!cond) throw new Error(`assertion failed: ${message}`)
}

let stepNo = 0
/** Calls `check` until it gives a truthy value, which it returns; fails naming `what`
 * after `timeout` ms. For states the page or the API reach in their own time. */
export async function until(what, check, timeout = 60_000) {
  const deadline = Date.now() + timeout
  for (;;) {
    const v = await check()
    if (v) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

export async function step(name, fn) {
  stepNo += 1
  const t0 = Date.now()
  process.stdout.write(`${stepNo}. ${name} … `)
  try {
    const out = await fn()
    console.log(`ok (${Date.now() - t0} ms)`)
    return out
  } catch (err) {
    console.log('FAILED')
    throw err
  }
}

/** An API client for the server at `base` with the bearer `token` (what the benches use). */
export function apiClient(base, token) {
  return async (method, path, body) => {
    const res = await fetch(`${base}/api/v1${path}`, {
      method,
      headers: { Authorization: `Bearer ${token}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    })
    const text = await res.text()
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`)
    return text ? JSON.parse(text) : null
  }
}

/**
 * Starts `spectask serve` for a bench, on 127.0.0.1 and a free port, with a scratch
 * data dir, and registers a fresh git repo as a project.
 *
 * - the binary: SPECTASK_BIN, else target/release/spectask, else target/debug/spectask;
 * - `agentEnv` (the name of an env var, e.g. 'SPECTASK_AGENT'): when given, the data
 *   dir's spectask.toml makes the scripted agent the default agent "test"; its path is
 *   that variable's value, else spectask-test-agent beside the binary;
 * - `files`: more files for the repo's first commit (path → content), beside a README;
 * - `project`: more fields for `POST /projects`.
 *
 * Returns { base, token, api, project, stop }; `stop()` ends the server and removes
 * the scratch dir (runBench does, as does a failed start).
 */
const started = []

export async function startServer({ name = 'bench', agentEnv, files = {}, project = {} } = {}) {
  const found = process.env.SPECTASK_BIN ?? ['target/release/spectask', 'target/debug/spectask'].find((p) => existsSync(p))
  const bin = found ? resolve(found) : ''
  if (!bin || !existsSync(bin)) throw new Error('no spectask binary: run `cargo build` (or set SPECTASK_BIN)')
  let agent = null
  if (agentEnv) {
    agent = resolve(process.env[agentEnv] ?? join(dirname(bin), 'spectask-test-agent'))
    if (!existsSync(agent)) throw new Error(`no scripted agent at ${agent}: run \`cargo build\` (or set ${agentEnv})`)
  }
  const scratch = mkdtempSync(join(tmpdir(), `spectask-${name}-`))
  let server = null
  const stop = async () => {
    if (server && server.exitCode === null && server.signalCode === null) {
      const exited = new Promise((r) => server.once('exit', r))
      server.kill('SIGTERM')
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))])
    }
    rmSync(scratch, { recursive: true, force: true })
  }
  started.push(stop)
  try {
    const data = join(scratch, 'data')
    mkdirSync(data)
    if (agent) writeFileSync(join(data, 'spectask.toml'), `default_agent = "test"\n[agents.test]\ncommand = ${JSON.stringify(agent)}\n`)
    server = spawn(bin, ['--data-dir', data, 'serve', '--bind', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'] })
    const url = await new Promise((ok, fail) => {
      const timer = setTimeout(() => fail(new Error('serve did not print its address in 60 s')), 60_000)
      let out = ''
      let listening = false
      // Read to the end (a full pipe would stop the server), kept until the address.
      const onData = (chunk) => {
        if (listening) return
        out += chunk
        const m = /is listening on (http:\/\/\S+)/.exec(out)
        if (m) {
          listening = true
          clearTimeout(timer)
          ok(m[1])
        }
      }
      server.stdout.on('data', onData)
      server.stderr.on('data', onData)
      server.on('error', fail)
      server.on('exit', (code) => fail(new Error(`serve exited with ${code}: ${out}`)))
    })
    const base = url.replace(/\/$/, '')
    const token = readFileSync(join(data, 'token'), 'utf8').trim()
    const api = apiClient(base, token)
    const repo = join(scratch, 'repo')
    mkdirSync(repo)
    const git = (...args) => execFileSync('git', ['-c', 'user.name=b', '-c', 'user.email=b@example.com', ...args], { cwd: repo })
    git('init', '-q', '-b', 'main')
    for (const [path, text] of Object.entries({ 'README.md': '# bench\n', ...files })) {
      mkdirSync(dirname(join(repo, path)), { recursive: true })
      writeFileSync(join(repo, path), text)
    }
    git('add', '.')
    git('commit', '-qm', 'init')
    return { base, token, api, project: await api('POST', '/projects', { path: repo, ...project }), stop }
  } catch (err) {
    await stop()
    throw err
  }
}

/**
 * Chromium (as launch() starts it) with a 1280x800 context signed in to the server at
 * `base` through a sign-in link; returns { browser, context }.
 */
export async function signIn({ base, api }) {
  const browser = await chromium.launch(BROWSER)
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } })
  const link = await api('POST', '/auth/sign-in-links')
  const page = await context.newPage()
  await page.goto(`${base}${link.path}`)
  await page.waitForURL(`${base}/`, { timeout: 30_000 })
  await page.close()
  return { browser, context }
}

/**
 * The looks a screenshot step goes through: light and dark, each at 1280×800 and at
 * 375 px. Sets each on `page` (reduced motion), runs `body(scheme, size)` with
 * `size` 'desktop' or 'mobile', then puts the page back to light at 1280×800.
 */
export async function eachLook(page, body) {
  for (const scheme of ['light', 'dark']) {
    for (const [size, viewport] of [
      ['desktop', { width: 1280, height: 800 }],
      ['mobile', { width: 375, height: 812 }],
    ]) {
      await page.setViewportSize(viewport)
      await page.emulateMedia({ colorScheme: scheme, reducedMotion: 'reduce' })
      await body(scheme, size)
    }
  }
  await page.setViewportSize({ width: 1280, height: 800 })
  await page.emulateMedia({ colorScheme: 'light' })
}

/**
 * Runs a browser scenario's `run` and exits: 0 when it passed, 1 on an error (printed).
 * The browser is closed either way, then `cleanup` runs, if given.
 */
export async function runScenario(browser, run, cleanup) {
  let failed = false
  try {
    await run()
  } catch (err) {
    failed = true
    console.error(err?.stack ?? String(err))
  } finally {
    await browser.close()
    if (cleanup) await cleanup()
  }
  process.exit(failed ? 1 : 0)
}

/**
 * Runs a bench's `main` (true: within its goals), stops the servers startServer
 * started, and exits: 0 within the goals, 1 outside them or on an error.
 */
export async function runBench(main) {
  let code = 1
  try {
    code = (await main()) ? 0 : 1
  } catch (err) {
    console.error(err?.stack ?? String(err))
  } finally {
    for (const stop of started.splice(0)) await stop()
  }
  process.exit(code)
}
