import net from 'node:net'
import { startTestHost } from '../src/testing/host.ts'
const th = await startTestHost()
await th.app.listen({ port: 0 })
const port = (th.app.server.address() as any).port
const send = (raw: string) => new Promise<string>((resolve) => { const s = net.connect(port, '127.0.0.1'); let out = ''; s.on('data', (d) => out += d); s.on('end', () => resolve(out)); s.on('error', () => resolve(out)); s.write(raw); setTimeout(() => { s.destroy(); resolve(out) }, 500) })
const cases: Record<string, string> = {
  pct: 'GET /api/plugins/inventory/%ff HTTP/1.1\r\nHost: x\r\n\r\n',
  pct2: 'GET /api/plugins/% HTTP/1.1\r\nHost: x\r\n\r\n',
  badline: 'GARBAGE\r\n\r\n',
  dupcl: 'POST /api/me HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}',
  clte: 'POST /api/me HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
  crlf: 'GET /health/live HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n',
  nohost: 'GET /health/live HTTP/1.1\r\n\r\n',
  bigurl: 'GET /' + 'a'.repeat(100_000) + ' HTTP/1.1\r\nHost: x\r\n\r\n',
}
for (const [k, v] of Object.entries(cases)) { const r = await send(v); console.log(k, JSON.stringify(r.slice(0, 300))) }
await th.close()
