// npm run bench:profile -- read|write [--against <commit>]: a CPU profile of the built plinth
// server under load, and where its time went, by part and by function, in CPU µs per request.
// With --against, the same for another commit (built in a git worktree of its own, with its own
// database made by its own code), loaded in interleaved rounds beside this one, and the difference
// part by part: where a change in CPU per request came from. The .cpuprofile files are kept
// (Chrome DevTools opens them).
//
// Each sample goes to the nearest frame, from the leaf up, that belongs to a known part: a
// serializer call is serialization; a socket write is a part of its own, whoever made it. Node's own frames count for the part
// above them; what runs with no part above it (parsing a request, flushing a response) is node's.
// Only samples taken while the bench was loading the server count: not its start, not its stop.
import { execFileSync, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { PROJECT_ROOT } from '../src/app/paths.ts'
import { buildPlinth, codeVersion, cpuSeconds, load, median, requireDatabaseUrl, startServer, type Server } from './support.ts'

// Each part names its files as this code lays them out and as earlier commits did, for --against.
const PARTS: [string, RegExp][] = [
  ['logging (pino, sonic-boom, redaction)', /node_modules\/(pino|sonic-boom|@pinojs)\/|\/(host|app)\/logger\./],
  ['response serialization (fast-json-stringify)', /node_modules\/fast-json-stringify\//],
  ['validation (ajv)', /node_modules\/(ajv|@fastify\/ajv-compiler)\//],
  ['body parsing', /content-type-parser\.js|secure-json-parse/],
  ['drizzle', /node_modules\/drizzle-orm\//],
  ['pg driver', /node_modules\/(pg|pg-protocol|pg-pool|pg-types|postgres-[a-z]+)\//],
  ['metrics (prom-client)', /node_modules\/(prom-client|tdigest|bintrees)\/|\/(host|app)\/metrics\./],
  ['identity, RBAC, tenant resolution', /\/(rbac\/|access\/|tenancy\/(tenant-scope|registry|resolve-tenant))|node:internal\/crypto/],
  ['module code', /\/plugins\//],
  ["Express router and response (modules' routes)", /\/(host\/)?modules\/express\//],
  ['the module query guard', /\/tenancy\/module-client\./],
  ['plinth host (transaction, adapter, hooks)', /\/(dist|src)\/(host|tenancy|http|app|platform)\//],
  ['async_hooks (AsyncLocalStorage)', /node:(internal\/)?async_hooks/],
  ['fastify', /node_modules\/(fastify|find-my-way|avvio|@fastify\/[a-z-]+)\//],
]
const NODE_IO = /node:(_http|net|internal\/(streams|stream_base|http|net))/
// libuv's writes, whoever asked for them: a pg query, an HTTP response, an uncorked socket.
const SOCKET_WRITES = new Set(['writev', 'writeBuffer', 'writeUtf8String', 'writeLatin1String', 'writeAsciiString'])

interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }[]
  samples: number[]
  timeDeltas: number[]
  startTime: number
  endTime: number
}

/** A span of wall-clock time (ms since the epoch) during which the server was under load. */
type Window = [start: number, end: number]

/** CPU µs per request by part and by function, from the samples inside the load windows. */
function attribute(profile: CpuProfile, windows: Window[], exitedAt: number, requests: number) {
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
  // Sample times are on the profiler's clock, which ends at the process's exit: map them to wall time.
  const sampleTimes: number[] = []
  let t = profile.startTime
  for (const delta of profile.timeDeltas) sampleTimes.push((t += delta))
  const toWall = (micros: number) => exitedAt - (profile.endTime - micros) / 1000
  const inLoad = (wall: number) => windows.some(([start, end]) => wall >= start && wall <= end)
  const parts = new Map<string, number>()
  const functions = new Map<string, number>()
  profile.samples.forEach((id, i) => {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame
    if (functionName === '(idle)' || !inLoad(toWall(sampleTimes[i]))) return
    const us = (profile.timeDeltas[i + 1] ?? 0) / requests
    const name =
      functionName === '(garbage collector)'
        ? 'garbage collection'
        : functionName === '(program)'
          ? 'V8 and native'
          : !url && SOCKET_WRITES.has(functionName)
            ? 'socket writes (system calls, database and HTTP)'
            : part(id)
    parts.set(name, (parts.get(name) ?? 0) + us)
    const fn = `${functionName || '(anonymous)'} ${url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*?\/(dist|src)\//, '$1/')}:${lineNumber + 1}`
    functions.set(fn, (functions.get(fn) ?? 0) + us)
  })
  return { parts, functions }
}

type Attribution = ReturnType<typeof attribute>

function table(title: string, names: string[], columns: Map<string, number>[], top: number): string[] {
  const keys = new Set(columns.flatMap((c) => [...c.keys()]))
  const value = (c: Map<string, number>, k: string) => c.get(k) ?? 0
  const rows = [...keys].map((k) => ({ k, values: columns.map((c) => value(c, k)) }))
  const weight = (r: (typeof rows)[number]) => (columns.length === 2 ? Math.abs(r.values[0] - r.values[1]) : r.values[0])
  rows.sort((a, b) => weight(b) - weight(a))
  const totals = columns.map((c) => [...c.values()].reduce((a, b) => a + b, 0))
  const diff = columns.length === 2
  const line = (label: string, v: number[]) => `| ${label} | ${v.map((x) => x.toFixed(1)).join(' | ')}${diff ? ` | ${(v[0] - v[1] >= 0 ? '+' : '') + (v[0] - v[1]).toFixed(1)}` : ''} |`
  return [
    `#### ${title}, CPU µs per request${diff ? ' (largest differences first)' : ''}`,
    '',
    `| | ${names.join(' | ')}${diff ? ' | difference' : ''} |`,
    `|---|${names.map(() => '---|').join('')}${diff ? '---|' : ''}`,
    ...rows.slice(0, top).map((r) => line(r.k, r.values)),
    line('**all**', totals),
    '',
  ]
}

interface Target {
  name: string
  root: string
}

/** Another commit, built in a worktree of its own (reused when it is already there). */
function prepareWorktree(commit: string): Target {
  const resolved = execFileSync('git', ['rev-parse', '--short', `${commit}^{commit}`], { cwd: PROJECT_ROOT, encoding: 'utf8' }).trim()
  const root = path.join(os.tmpdir(), `plinth-at-${resolved}`)
  const run = (cmd: string, args: string[], cwd: string) => execFileSync(cmd, args, { cwd, stdio: ['ignore', 'ignore', 'inherit'] })
  if (!existsSync(path.join(root, 'dist/main.js'))) {
    process.stderr.write(`building ${resolved} in ${root} (npm ci, build)...\n`)
    if (!existsSync(root)) run('git', ['worktree', 'add', '--detach', root, resolved], PROJECT_ROOT)
    run('npm', ['ci', '--prefer-offline', '--no-audit', '--no-fund'], root)
    run(process.execPath, ['scripts/build.js'], root)
  }
  return { name: resolved, root }
}

/**
 * A database with the bench's tenant, made by the target's own code (its migrations, its
 * createBenchTenant) in a child process, which drops it when told to.
 */
async function benchDatabase(target: Target): Promise<{ env: Record<string, string>; key: string; drop(): Promise<void> }> {
  const script = `
    const { createTestDatabase } = await import(${JSON.stringify(path.join(target.root, 'src/testing/database.ts'))})
    const { openBenchHost, createBenchTenant } = await import(${JSON.stringify(path.join(target.root, 'bench/support.ts'))})
    const database = await createTestDatabase()
    const env = { ...database.env, DB_POOL_MAX: '10' }
    const host = await openBenchHost(env)
    const { key } = await createBenchTenant(host)
    await host.close()
    process.stdout.write(JSON.stringify({ env, key }) + '\\n')
    process.stdin.resume()
    process.stdin.on('end', async () => { await database.drop(); process.exit(0) })`
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: target.root, stdio: ['pipe', 'pipe', 'inherit'] })
  const line = await new Promise<string>((resolve, reject) => {
    let seen = ''
    child.stdout.on('data', (chunk) => {
      seen += chunk
      if (seen.includes('\n')) resolve(seen.split('\n')[0])
    })
    child.once('exit', (code) => reject(new Error(`setting up ${target.name}'s database failed (${code})`)))
  })
  const { env, key } = JSON.parse(line)
  return { env, key, drop: () => new Promise((done) => (child.once('exit', () => done()), child.stdin.end())) }
}

requireDatabaseUrl()
const args = process.argv.slice(2)
const kind = args.includes('write') ? 'write' : 'read'
const against = args.includes('--against') ? args[args.indexOf('--against') + 1] : undefined
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? (against ? 4 : 1))
const DURATION = Number(process.env.BENCH_DURATION ?? (against ? 5 : 12))
buildPlinth()
const here = codeVersion()
const targets: Target[] = [{ name: here ? `${here.commit}${here.modified ? '+' : ''}` : 'this tree', root: PROJECT_ROOT }]
if (against) targets.push(prepareWorktree(against))

interface Running {
  target: Target
  server: Server
  key: string
  dir: string
  windows: Window[]
  requests: number
  cpuPerRequest: number[]
  reqPerSec: number[]
  drop(): Promise<void>
}
const running: Running[] = []
try {
  for (const target of targets) {
    const database = await benchDatabase(target)
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'plinth-profile-'))
    const main = path.relative(PROJECT_ROOT, path.join(target.root, 'dist/main.js'))
    const server = await startServer(target.name, main, { ...database.env, LOG_LEVEL: 'info', PORT: '0' }, ['--cpu-prof', `--cpu-prof-dir=${dir}`])
    running.push({ target, server, key: database.key, dir, windows: [], requests: 0, cpuPerRequest: [], reqPerSec: [], drop: database.drop })
  }
  const request = (r: Running) => ({
    url: `${r.server.url}/api/plugins/inventory/items${kind === 'read' ? '?limit=20' : ''}`,
    method: kind === 'read' ? ('GET' as const) : ('POST' as const),
    headers: { authorization: `Bearer ${r.key}`, 'content-type': 'application/json' },
    body: kind === 'write' ? JSON.stringify({ name: 'written by the bench' }) : undefined,
  })
  for (const r of running) await load({ ...request(r), duration: 3 }) // warm-up
  for (let round = 1; round <= ROUNDS; round++) {
    for (const r of running) {
      const cpuBefore = await cpuSeconds(r.server.child.pid!)
      const start = Date.now()
      const result = await load({ ...request(r), duration: DURATION })
      r.windows.push([start, Date.now()])
      const cpuAfter = await cpuSeconds(r.server.child.pid!)
      if (result.errors || result.non2xx) throw new Error(`${r.target.name}: ${result.errors} errors, ${result.non2xx} non-2xx`)
      r.requests += result.requests
      r.reqPerSec.push(result.reqPerSec)
      if (cpuBefore !== null && cpuAfter !== null) r.cpuPerRequest.push((1e6 * (cpuAfter - cpuBefore)) / result.requests)
      process.stderr.write(`${kind} round ${round} ${r.target.name}: ${Math.round(result.reqPerSec)} req/s${r.cpuPerRequest.length ? `, ${Math.round(r.cpuPerRequest.at(-1)!)} µs CPU/request` : ''}\n`)
    }
  }
} finally {
  for (const r of running) {
    await r.server.stop()
    ;(r as Running & { exitedAt?: number }).exitedAt = Date.now()
    await r.drop()
  }
}

const attributions: Attribution[] = []
const files: string[] = []
for (const r of running as (Running & { exitedAt: number })[]) {
  const names = await fs.readdir(r.dir)
  const sizes = await Promise.all(names.map(async (f) => ({ f, size: (await fs.stat(path.join(r.dir, f))).size })))
  const main = path.join(r.dir, sizes.sort((a, b) => b.size - a.size)[0].f) // the main thread's, not a worker's
  files.push(main)
  attributions.push(attribute(JSON.parse(await fs.readFile(main, 'utf8')), r.windows, r.exitedAt, r.requests))
}
const names = running.map((r) => r.target.name)
const report = [
  `### ${kind === 'read' ? 'GET /items?limit=20' : 'POST /items'}: ${names.join(' against ')}`,
  '',
  `${ROUNDS} interleaved round(s) of ${DURATION} s, under the profiler (which adds its own cost to every figure).`,
  '',
  ...running.map((r) => `- ${r.target.name}: ${Math.round(median(r.reqPerSec))} req/s, ${r.cpuPerRequest.length ? Math.round(median(r.cpuPerRequest)) : 'n/a'} CPU µs/request (from /proc; rounds: ${r.cpuPerRequest.map(Math.round).join(', ')})`),
  '',
  ...table('By part', names, attributions.map((a) => a.parts), 20),
  ...table('By function (own time)', names, attributions.map((a) => a.functions), 25),
  ...files.map((f, i) => `profile of ${names[i]}: ${f}`),
]
process.stdout.write(`${report.join('\n')}\n`)
const at = new Date().toISOString()
const file = path.join(PROJECT_ROOT, 'bench/results', `profile-${kind}-${at.replace(/[:.]/g, '-')}`)
const summary = (a: Attribution) => Object.fromEntries([...a.parts.entries()].sort((x, y) => y[1] - x[1]).map(([k, v]) => [k, Math.round(v * 10) / 10]))
await fs.writeFile(
  `${file}.json`,
  JSON.stringify(
    {
      at,
      code: here,
      kind,
      rounds: ROUNDS,
      durationSeconds: DURATION,
      servers: running.map((r, i) => ({ name: r.target.name, reqPerSec: Math.round(median(r.reqPerSec)), cpuMicrosPerRequest: r.cpuPerRequest.map(Math.round), partsMicrosPerRequest: summary(attributions[i]) })),
    },
    null,
    2,
  ) + '\n',
)
await fs.writeFile(`${file}.md`, `${report.slice(0, -files.length).join('\n')}\n`)
