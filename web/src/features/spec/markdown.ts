// Markdown for the spec documents, rendered block by block so each block knows the
// source lines it came from (comments anchor to lines). Raw HTML in a document is
// shown as text, links are limited to safe schemes, code blocks are highlighted.
import { Marked, type Token, type Tokens, type TokensList } from 'marked'
import hljs from 'highlight.js/lib/core'
import bash from 'highlight.js/lib/languages/bash'
import json from 'highlight.js/lib/languages/json'
import rust from 'highlight.js/lib/languages/rust'
import typescript from 'highlight.js/lib/languages/typescript'
import javascript from 'highlight.js/lib/languages/javascript'
import python from 'highlight.js/lib/languages/python'
import sql from 'highlight.js/lib/languages/sql'
import yaml from 'highlight.js/lib/languages/yaml'
import ini from 'highlight.js/lib/languages/ini'
import go from 'highlight.js/lib/languages/go'
import xml from 'highlight.js/lib/languages/xml'
import css from 'highlight.js/lib/languages/css'
import diff from 'highlight.js/lib/languages/diff'

hljs.registerLanguage('bash', bash)
hljs.registerLanguage('json', json)
hljs.registerLanguage('rust', rust)
hljs.registerLanguage('typescript', typescript)
hljs.registerLanguage('javascript', javascript)
hljs.registerLanguage('python', python)
hljs.registerLanguage('sql', sql)
hljs.registerLanguage('yaml', yaml)
hljs.registerLanguage('ini', ini)
hljs.registerLanguage('go', go)
hljs.registerLanguage('xml', xml)
hljs.registerLanguage('css', css)
hljs.registerLanguage('diff', diff)
hljs.registerAliases(['sh', 'shell', 'console', 'zsh'], { languageName: 'bash' })
hljs.registerAliases(['ts', 'tsx'], { languageName: 'typescript' })
hljs.registerAliases(['js', 'jsx', 'mjs'], { languageName: 'javascript' })
hljs.registerAliases(['rs'], { languageName: 'rust' })
hljs.registerAliases(['py'], { languageName: 'python' })
hljs.registerAliases(['yml'], { languageName: 'yaml' })
hljs.registerAliases(['toml'], { languageName: 'ini' })
hljs.registerAliases(['html', 'svg'], { languageName: 'xml' })

export function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
}

function safeHref(href: string): string | null {
  const h = href.trim()
  if (/^(https?:|mailto:)/i.test(h) || h.startsWith('#') || h.startsWith('/') || !/^[a-z][a-z0-9+.-]*:/i.test(h)) return h
  return null
}

export function highlight(code: string, lang?: string): string {
  const language = (lang ?? '').trim().split(/\s+/)[0]?.toLowerCase() ?? ''
  if (language && hljs.getLanguage(language)) {
    return hljs.highlight(code, { language, ignoreIllegals: true }).value
  }
  return escapeHtml(code)
}

const md = new Marked({
  gfm: true,
  renderer: {
    html({ text }: Tokens.HTML | Tokens.Tag) {
      return escapeHtml(text)
    },
    code({ text, lang }: Tokens.Code) {
      const l = (lang ?? '').split(/\s+/)[0] ?? ''
      const cls = l ? ` class="hljs language-${escapeHtml(l)}"` : ' class="hljs"'
      return `<pre><code${cls}>${highlight(text, l)}</code></pre>\n`
    },
    link({ href, title, tokens }: Tokens.Link) {
      const text = this.parser.parseInline(tokens)
      const safe = safeHref(href)
      if (safe === null) return text
      const t = title ? ` title="${escapeHtml(title)}"` : ''
      return `<a href="${escapeHtml(safe)}"${t} rel="noopener noreferrer" target="_blank">${text}</a>`
    },
    image({ href, text }: Tokens.Image) {
      // Images would load from elsewhere (and CSP forbids it): show the reference.
      return `<span class="md-image">[image: ${escapeHtml(text || href)}]</span>`
    },
  },
})

export interface Block {
  /** 1-based first and last source lines. */
  start: number
  end: number
  html: string
  raw: string
  type: string
}

const cache = new Map<string, Block[]>()

function block(token: Token, text: string, line: number, all: TokensList): Block {
  const newlines = (text.match(/\n/g) ?? []).length
  const lead = text.match(/^\n*/)?.[0].length ?? 0
  const trail = text.endsWith('\n') ? (text.match(/\n*$/)?.[0].length ?? 0) : 0
  const start = line + lead
  const end = Math.max(start, line + newlines - trail)
  const list = [token] as unknown as TokensList
  list.links = all.links
  return { start, end, html: md.parser(list), raw: text, type: token.type }
}

/** The document's top-level blocks with their line ranges, rendered to HTML. */
export function renderBlocks(raw: string): Block[] {
  const hit = cache.get(raw)
  if (hit) return hit
  const tokens: TokensList = md.lexer(raw)
  const blocks: Block[] = []
  let line = 1
  for (const token of tokens as Token[]) {
    const text = token.raw
    const newlines = (text.match(/\n/g) ?? []).length
    if (token.type === 'list') {
      // One block per item, so a comment anchors to one criterion or one task.
      const list = token as Tokens.List
      let itemLine = line
      list.items.forEach((item, i) => {
        const one: Tokens.List = { ...list, items: [item], start: list.ordered ? (Number(list.start) || 1) + i : '' }
        blocks.push(block(one, item.raw, itemLine, tokens))
        itemLine += (item.raw.match(/\n/g) ?? []).length
      })
    } else if (token.type !== 'space') {
      blocks.push(block(token, text, line, tokens))
    }
    line += newlines
  }
  if (cache.size > 50) cache.clear()
  cache.set(raw, blocks)
  return blocks
}
