import { defineConfig } from 'vite'
import react from '@vitejs/plugin-react'

// `npm run dev` serves the dashboard with hot reload and forwards the API (and its
// WebSocket) to a running `spectask serve`. The Host header is kept as the browser
// sent it, so the server's same-origin check on cookie writes passes.
declare const process: { env: Record<string, string | undefined> }
const target = process.env.SPECTASK_URL ?? 'http://127.0.0.1:7420'

export default defineConfig({
  plugins: [react()],
  base: '/',
  server: {
    proxy: {
      '/api': { target, ws: true },
      '/healthz': { target },
    },
  },
  build: {
    outDir: 'dist',
    assetsDir: 'assets',
    emptyOutDir: true,
    sourcemap: false,
    chunkSizeWarningLimit: 600,
  },
})
