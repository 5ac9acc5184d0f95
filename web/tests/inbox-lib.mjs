// Helpers of inbox.mjs: a webhook receiver, a port nothing listens on, and a wait
// on a condition with a deadline.
import { createServer } from 'node:http'

/** An HTTP receiver on 127.0.0.1 that records every request (headers, raw body, JSON) and answers 200. */
export async function receiver() {
  const received = []
  const server = createServer((req, res) => {
    const chunks = []
    req.on('data', (c) => chunks.push(c))
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8')
      let json = null
      try {
        json = JSON.parse(body)
      } catch {
        json = null
      }
      received.push({ method: req.method, path: req.url, headers: req.headers, body, json })
      res.writeHead(200, { 'Content-Type': 'text/plain' })
      res.end('ok')
    })
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address()
  return { url: `http://127.0.0.1:${port}/hook`, received, close: () => server.close() }
}

/** A port that was free a moment ago and has nothing listening on it now. */
export async function closedPort() {
  const server = createServer()
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address()
  await new Promise((resolve) => server.close(resolve))
  return port
}

