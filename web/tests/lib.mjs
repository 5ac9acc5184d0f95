// Shared by the browser tests: Debian's Chromium through playwright-core, the API
// with a bearer token (what a script or the CLI would do), and small checks.
import { chromium } from 'playwright-core'
import { mkdirSync } from 'node:fs'

export const BASE = required('SPECTASK_URL').replace(/\/$/, '')
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

export async function launch() {
  mkdirSync(SHOTS, { recursive: true })
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-dev-shm-usage'],
  })
}

/** Calls the API as a script would, with the bearer token. */
export async function api(method, path, body) {
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
