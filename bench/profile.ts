// npm run bench:profile -- read|write: a CPU profile of the built plinth server under load, and
// where its time went, by part and by function. The .cpuprofile is kept (Chrome DevTools opens it).
//
// Each sample goes to the nearest frame, from the leaf up, that belongs to a known part: pg's
// socket write is pg's, a serializer call is serialization. Node's own frames count for the part
// above them; what runs with no part above it (parsing a request, flushing a response) is node's.
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { createTestDatabase } from '../src/testing/database.ts'
import { buildPlinth, createBenchTenant, load, openBenchHost, requireDatabaseUrl, startServer } from './support.ts'

const PARTS: [string, RegExp][] = [
  ['logging (pino, sonic-boom, redaction)', /node_modules\/(pino|sonic-boom|@pinojs)\/|\/host\/logger\./],
  ['response serialization (fast-json-stringify)', /node_modules\/fast-json-stringify\//],
  ['validation (ajv)', /node_modules\/(ajv|@fastify\/ajv-compiler)\//],
  ['body parsing', /content-type-parser\.js|secure-json-parse/],
  ['drizzle', /node_modules\/drizzle-orm\//],
  ['pg driver and its socket writes', /node_modules\/(pg|pg-protocol|pg-pool|pg-types|postgres-[a-z]+)\//],
  ['identity, RBAC, tenant resolution', /\/(rbac\/|tenancy\/(tenant-scope|registry))|node:internal\/crypto/],
  ['module code', /\/plugins\//],
  ['plinth host (transaction, adapter, hooks)', /\/(dist|src)\/(host|tenancy)\//],
  ['async_hooks (AsyncLocalStorage)', /node:(internal\/)?async_hooks/],
  ['fastify', /node_modules\/(fastify|find-my-way|avvio|@fastify\/[a-z-]+)\//],
]
const NODE_IO = /node:(_http|net|internal\/(streams|stream_base|http|net))/

interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }[]
  samples: number[]
  timeDeltas: number[]
}

function summarize(profile: CpuProfile): string {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]))
  const parent = new Map<number, number>()
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id)
  const partOf = new Map<number, string>()
  const part = (id: number): string => {
    const known = partOf.get(id)
    if (known) return known
    const { url, functionName } = byId.get(id)!.callFrame
    const where = `${url}:${functionName}`
    const up = parent.get(id)
    let name = PARTS.find(([, re]) => re.test(where))?.[0] ?? (up === undefined ? 'other' : part(up))
    if (name === 'other' && NODE_IO.test(where)) name = 'node http, net, streams'
    partOf.set(id, name)
    return name
  }
  const parts = new Map<string, number>()
  const functions = new Map<string, number>()
  profile.samples.forEach((id, i) => {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame
    if (functionName === '(idle)') return
    const us = profile.timeDeltas[i] ?? 0
    const name = functionName === '(garbage collector)' ? 'garbage collection' : functionName === '(program)' ? 'V8 and native' : part(id)
    parts.set(name, (parts.get(name) ?? 0) + us)
    const fn = `${functionName || '(anonymous)'} ${url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*?\/(dist|src)\//, '$1/')}:${lineNumber + 1}`
    functions.set(fn, (functions.get(fn) ?? 0) + us)
  })
  const busy = [...parts.values()].reduce((a, b) => a + b, 0)
  const rank = (m: Map<string, number>, n: number) =>
    [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, v]) => `${((100 * v) / busy).toFixed(1).padStart(5)}%  ${k}`)
  return ['by part:', ...rank(parts, 20), '', 'by function (own time):', ...rank(functions, 20)].join('\n')
}

requireDatabaseUrl()
const kind = process.argv[2] === 'write' ? 'write' : 'read'
buildPlinth()
const database = await createTestDatabase()
const env = { ...database.env, DB_POOL_MAX: '10' } as Record<string, string>
const host = await openBenchHost(env)
const { key } = await createBenchTenant(host)
await host.close()
const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'plinth-profile-'))
const server = await startServer('plinth', 'dist/main.js', { ...env, LOG_LEVEL: 'info', PORT: '0' }, ['--cpu-prof', `--cpu-prof-dir=${dir}`])
try {
  const request = {
    url: `${server.url}/api/plugins/inventory/items${kind === 'read' ? '?limit=20' : ''}`,
    method: kind === 'read' ? ('GET' as const) : ('POST' as const),
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: kind === 'write' ? JSON.stringify({ name: 'written by the bench' }) : undefined,
  }
  await load({ ...request, duration: 3 }) // warm-up
  const result = await load({ ...request, duration: Number(process.env.BENCH_DURATION ?? 12) })
  process.stderr.write(`${kind}: ${Math.round(result.reqPerSec)} req/s\n`)
} finally {
  await server.stop()
  await database.drop()
}
const files = await fs.readdir(dir)
const sizes = await Promise.all(files.map(async (f) => ({ f, size: (await fs.stat(path.join(dir, f))).size })))
const main = path.join(dir, sizes.sort((a, b) => b.size - a.size)[0].f) // the main thread's, not a worker's
process.stdout.write(`${summarize(JSON.parse(await fs.readFile(main, 'utf8')))}\n\nprofile: ${main}\n`)
