// npm run bench: plinth against a bare Fastify floor and the Express design, on one PostgreSQL,
// same pool size, same statements, same rows, measured in interleaved rounds with autocannon.
import fs from 'node:fs/promises'
import http from 'node:http'
import path from 'node:path'
import { buildApp } from '../src/http/app.ts'
import { PROJECT_ROOT } from '../src/app/paths.ts'
import { countDatabaseWork } from '../test/helpers/count-database-work.ts'
import { createTestDatabase } from '../src/testing/database.ts'
import { buildPlinth, codeVersion, cpuSeconds, createBenchTenant, load, machine, median, openBenchHost, postgresCpu, postgresCpuSecondsBetween, requireDatabaseUrl, startServer, type Load, type Server } from './support.ts'

requireDatabaseUrl()
buildPlinth()
// The code measured is the code built now: a commit made while the bench runs is not it.
const code = codeVersion()
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5)
const DURATION = Number(process.env.BENCH_DURATION ?? 5)
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 20)
// Seconds of load on each server before the first round. With 2 s, plinth's CPU per POST was still
// falling through the rounds (489, 434, 347 µs): V8 was still optimising what the rounds measured.
const WARMUP = Number(process.env.BENCH_WARMUP ?? 8)
const POOL = '10'
// BENCH_SERVERS=plinth,floor-pipelined: only these servers (plinth always), for a quick A/B while
// working; ratios whose servers were left out are left out. BENCH_KINDS=write: only POSTs.
const ONLY = process.env.BENCH_SERVERS ? new Set(['plinth', ...process.env.BENCH_SERVERS.split(',')]) : undefined
const KINDS = (process.env.BENCH_KINDS ?? 'read,write').split(',')

const database = await createTestDatabase()
// bench/modules/seedstyle: inventory's list route written the seed's way, through ctx.withTenantTx.
const env = { ...database.env, DB_POOL_MAX: POOL, PLINTH_MODULE_DIRS: path.join(PROJECT_ROOT, 'bench/modules') } as Record<string, string>
const host = await openBenchHost(env)
const { tenant, key } = await createBenchTenant(host)

// Statements and round trips per request, warm: count what plinth sends while serving 100 requests.
const app = await buildApp(host, { closeHost: false })
const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' }
for (let i = 0; i < 20; i++) await app.inject({ url: '/api/plugins/inventory/items?limit=20', headers })
const counted = await countDatabaseWork(async () => {
  for (let i = 0; i < 100; i++) await app.inject({ url: '/api/plugins/inventory/items?limit=20', headers })
})
const perRequest = { statements: counted.statements / 100, roundTrips: counted.roundTrips / 100, writes: counted.writes / 100 }
await app.close()
await host.close()

const servers: Server[] = []
const allServers = servers
// BENCH_DB_RTT_MS=<ms>: the servers reach PostgreSQL through a proxy adding that much to each
// round trip, as if it ran on another host (the round trips saved then count for more than CPU).
const RTT_MS = Number(process.env.BENCH_DB_RTT_MS ?? 0)
let databaseUrl = env.DATABASE_URL
let proxy: Server | undefined
if (RTT_MS > 0) {
  const url = new URL(databaseUrl)
  proxy = await startServer('proxy', 'bench/latency-proxy.ts', { PROXY_TARGET: `${url.hostname}:${url.port || 5432}`, PROXY_RTT_MS: String(RTT_MS) })
  url.host = `127.0.0.1:${new URL(proxy.url).port}`
  databaseUrl = url.toString()
}
const common = { ...env, DATABASE_URL: databaseUrl, BENCH_SCHEMA: tenant.schema, BENCH_ROLE: tenant.role, LOG_LEVEL: 'info', PORT: '0' }
const wanted = (name: string) => !ONLY || ONLY.has(name)
const serve = async (name: string, script: string, env: Record<string, string>) => {
  if (wanted(name)) servers.push(await startServer(name, script, env))
}
const plinth = await startServer('plinth', 'dist/main.js', common)
servers.push(plinth)
// The same process, measured on the seed-style route: the withTenantTx figure beside req.db's.
if (wanted('plinth-withTenantTx')) servers.push({ ...plinth, name: 'plinth-withTenantTx', stop: async () => {} })
// The same build with metrics off: what collecting them costs.
await serve('plinth-no-metrics', 'dist/main.js', { ...common, PLINTH_METRICS: '0' })
// With no per-tenant bound on pooled clients: what the fair share's bookkeeping costs.
await serve('plinth-no-fair-share', 'dist/main.js', { ...common, DB_TENANT_POOL_MAX: '0' })
// With the brake on failed authentications off: what checking each request's address costs.
await serve('plinth-no-brake', 'dist/main.js', { ...common, PLINTH_AUTH_FAILURE_LIMIT: '0' })
// With no line per request (LOG_LEVEL=warn; a module's info lines go too): what logging costs.
await serve('plinth-no-request-log', 'dist/main.js', { ...common, LOG_LEVEL: 'warn' })
// Tracing on (PLINTH_OTEL=1), every request sampled and one in a hundred, exporting over OTLP/HTTP
// to a sink in this process that reads and drops what it is sent: what tracing costs when on.
const sink = http.createServer((request, response) => {
  request.resume()
  request.on('end', () => response.writeHead(200, { 'content-type': 'application/json' }).end('{}'))
})
await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve))
const traced = { ...common, PLINTH_OTEL: '1', OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${(sink.address() as { port: number }).port}` }
await serve('plinth-traced', 'dist/main.js', { ...traced, OTEL_TRACES_SAMPLER: 'always_on' })
await serve('plinth-traced-1pct', 'dist/main.js', { ...traced, OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.01' })
await serve('floor', 'bench/floor-server.ts', common)
await serve('floor-pipelined', 'bench/floor-server.ts', { ...common, FLOOR_PIPELINE: '1' })
// The floor opening its transactions as plinth does (tenant role, timeouts): what they cost PostgreSQL.
await serve('floor-pipelined-settings', 'bench/floor-server.ts', { ...common, FLOOR_PIPELINE: '1', FLOOR_SETTINGS: '1' })
// The same, with the settings and the statement as named prepared statements: what parsing and
// planning them on every request costs PostgreSQL (plinth does not prepare them: docs/benchmarks.md).
await serve('floor-pipelined-prepared', 'bench/floor-server.ts', { ...common, FLOOR_PIPELINE: '1', FLOOR_SETTINGS: '1', FLOOR_PREPARED: '1' })
await serve('express', 'bench/express-server.ts', common)
const paths: Record<string, string> = {
  plinth: '/api/plugins/inventory/items',
  'plinth-no-metrics': '/api/plugins/inventory/items',
  'plinth-no-fair-share': '/api/plugins/inventory/items',
  'plinth-no-brake': '/api/plugins/inventory/items',
  'plinth-no-request-log': '/api/plugins/inventory/items',
  'plinth-traced': '/api/plugins/inventory/items',
  'plinth-traced-1pct': '/api/plugins/inventory/items',
  'floor-pipelined-settings': '/items',
  'floor-pipelined-prepared': '/items',
  'plinth-withTenantTx': '/api/plugins/seedstyle/items',
  floor: '/items',
  'floor-pipelined': '/items',
  express: '/items',
}

async function measure(kind: 'read' | 'write') {
  // The seed-style module has a list route only.
  const servers = allServers.filter((s) => kind === 'read' || s.name !== 'plinth-withTenantTx')
  const results: Record<string, Load[]> = Object.fromEntries(servers.map((s) => [s.name, []]))
  const cpuPerRequest: Record<string, number[]> = Object.fromEntries(servers.map((s) => [s.name, []]))
  // PostgreSQL's CPU while each server was loaded, over all its processes: what each server's way
  // of sending the work costs the database (the latency proxy, when used, is not PostgreSQL).
  const postgresCpuPerRequest: Record<string, number[]> = Object.fromEntries(servers.map((s) => [s.name, []]))
  const options = (server: Server) => ({
    url: `${server.url}${paths[server.name]}${kind === 'read' ? '?limit=20' : ''}`,
    method: kind === 'read' ? ('GET' as const) : ('POST' as const),
    headers: server.name.startsWith('plinth') ? headers : { 'content-type': 'application/json' },
    body: kind === 'write' ? JSON.stringify({ name: 'written by the bench' }) : undefined,
    connections: CONNECTIONS,
    duration: DURATION,
  })
  // The plinth process serves the seed-style route too (plinth-withTenantTx). Each other plinth
  // process gets the same load on that route, unmeasured, so that every one of them runs code with
  // the same history: V8 optimises for what it has seen, and a process that served one route only
  // was 32-85 µs a request faster on it, which the safeguards' pairs then showed as their cost.
  const sameHistory = (server: Server, duration = DURATION) =>
    kind === 'read' && server.name.startsWith('plinth-no-') ? load({ ...options(server), duration, url: `${server.url}${paths['plinth-withTenantTx']}?limit=20` }) : undefined
  for (const server of servers) {
    await load({ ...options(server), duration: WARMUP })
    await sameHistory(server, WARMUP)
  }
  for (let round = 1; round <= ROUNDS; round++) {
    for (const server of servers) {
      const postgresBefore = await postgresCpu()
      const cpuBefore = await cpuSeconds(server.child.pid!)
      const result = await load(options(server))
      const cpuAfter = await cpuSeconds(server.child.pid!)
      const postgres = postgresCpuSecondsBetween(postgresBefore, await postgresCpu())
      if (postgres !== null) postgresCpuPerRequest[server.name].push((1e6 * postgres) / result.requests)
      await sameHistory(server)
      if (cpuBefore !== null && cpuAfter !== null) cpuPerRequest[server.name].push((1e6 * (cpuAfter - cpuBefore)) / result.requests)
      if (result.errors || result.non2xx) throw new Error(`${server.name} ${kind}: ${result.errors} errors, ${result.non2xx} non-2xx`)
      results[server.name].push(result)
      const cpu = cpuPerRequest[server.name].at(-1)
      process.stderr.write(`${kind} round ${round} ${server.name}: ${Math.round(result.reqPerSec)} req/s, p99 ${result.p99} ms${cpu ? `, ${Math.round(cpu)} µs CPU/request` : ''}\n`)
    }
  }
  const summary = Object.fromEntries(
    Object.entries(results).map(([name, runs]) => [
      name,
      {
        reqPerSec: Math.round(median(runs.map((r) => r.reqPerSec))),
        p50: median(runs.map((r) => r.p50)),
        p99: median(runs.map((r) => r.p99)),
        cpuMicrosPerRequest: cpuPerRequest[name].length ? Math.round(median(cpuPerRequest[name])) : null,
        postgresCpuMicrosPerRequest: postgresCpuPerRequest[name].length ? Math.round(median(postgresCpuPerRequest[name])) : null,
      },
    ]),
  )
  return {
    summary,
    ratios: {
      plinthOverFloor: ratio(summary.plinth?.reqPerSec, summary.floor?.reqPerSec),
      plinthP99OverFloor: ratio(summary.plinth?.p99, summary.floor?.p99),
      plinthOverExpress: ratio(summary.plinth?.reqPerSec, summary.express?.reqPerSec),
      plinthOverPipelinedFloor: ratio(summary.plinth?.reqPerSec, summary['floor-pipelined']?.reqPerSec),
      metricsOverNoMetrics: ratio(summary.plinth?.reqPerSec, summary['plinth-no-metrics']?.reqPerSec),
      fairShareOverNone: ratio(summary.plinth?.reqPerSec, summary['plinth-no-fair-share']?.reqPerSec),
      requestLogOverNone: ratio(summary.plinth?.reqPerSec, summary['plinth-no-request-log']?.reqPerSec),
      brakeOverNone: ratio(summary.plinth?.reqPerSec, summary['plinth-no-brake']?.reqPerSec),
      settingsOverNone: ratio(summary['floor-pipelined-settings']?.reqPerSec, summary['floor-pipelined']?.reqPerSec),
      withTenantTxOverReqDb: ratio(summary['plinth-withTenantTx']?.reqPerSec, summary.plinth?.reqPerSec),
      plinthCpuOverFloor: ratio(summary.plinth?.cpuMicrosPerRequest, summary.floor?.cpuMicrosPerRequest),
      plinthCpuOverPipelinedFloor: ratio(summary.plinth?.cpuMicrosPerRequest, summary['floor-pipelined']?.cpuMicrosPerRequest),
      plinthP99OverPipelinedFloor: ratio(summary.plinth?.p99, summary['floor-pipelined']?.p99),
    },
  }
}

/** a ÷ b to three places; undefined when either server was left out of this run. */
function ratio(a: number | null | undefined, b: number | null | undefined): number | undefined {
  return a && b ? +(a / b).toFixed(3) : undefined
}

/** Each safeguard as an A/B pair: the same server with it and without it, side by side. */
function safeguards(r: Awaited<ReturnType<typeof measure>>): string[] {
  const pairs: [string, string, string][] = [
    ['metrics (PLINTH_METRICS)', 'plinth', 'plinth-no-metrics'],
    ['per-tenant bound on pooled clients (DB_TENANT_POOL_MAX)', 'plinth', 'plinth-no-fair-share'],
    ['brake on failed authentications (PLINTH_AUTH_FAILURE_LIMIT)', 'plinth', 'plinth-no-brake'],
    ['a log line per request, and the module\'s own (LOG_LEVEL=info against warn)', 'plinth', 'plinth-no-request-log'],
    ['tenant role and timeouts in BEGIN (PostgreSQL side, on the floor)', 'floor-pipelined-settings', 'floor-pipelined'],
    ['named prepared statements for the settings and the statement (on the floor)', 'floor-pipelined-prepared', 'floor-pipelined-settings'],
    ['withTenantTx route instead of req.db', 'plinth-withTenantTx', 'plinth'],
    ['tracing on, every request sampled (PLINTH_OTEL=1, always_on)', 'plinth-traced', 'plinth'],
    ['tracing on, 1% sampled (traceidratio 0.01)', 'plinth-traced-1pct', 'plinth'],
  ]
  const rows = pairs
    .filter(([, a, b]) => r.summary[a] && r.summary[b])
    .map(([what, a, b]) => {
      const [on, off] = [r.summary[a], r.summary[b]]
      const cpu = on.cpuMicrosPerRequest && off.cpuMicrosPerRequest ? `${on.cpuMicrosPerRequest} / ${off.cpuMicrosPerRequest} (${on.cpuMicrosPerRequest - off.cpuMicrosPerRequest >= 0 ? '+' : ''}${on.cpuMicrosPerRequest - off.cpuMicrosPerRequest})` : 'n/a'
      const postgres = on.postgresCpuMicrosPerRequest && off.postgresCpuMicrosPerRequest ? `${on.postgresCpuMicrosPerRequest} / ${off.postgresCpuMicrosPerRequest}` : 'n/a'
      return `| ${what} | ${a} / ${b} | ${(on.reqPerSec / off.reqPerSec).toFixed(3)} | ${cpu} | ${postgres} |`
    })
  if (rows.length === 0) return []
  return ['| safeguard | with / without | req/s with ÷ without | server CPU µs/request with / without | PostgreSQL CPU µs/request with / without |', '|---|---|---|---|---|', ...rows, '']
}

/** The ratios this run measured, each beside its target (issue #27's, for the defaults on Node 24). */
function targetsLine(kind: 'read' | 'write', ratios: Record<string, number | undefined>): string {
  const targets: [keyof typeof ratios, string, string][] = [
    ['plinthOverFloor', 'plinth/floor req/s', kind === 'read' ? '>= 0.95' : '>= 0.90'],
    ['plinthCpuOverPipelinedFloor', 'plinth/floor-pipelined CPU per request', kind === 'read' ? '<= 1.25' : '<= 1.5'],
    ['plinthP99OverFloor', 'plinth/floor p99', '<= 1.3'],
    ['plinthOverExpress', 'plinth/express req/s', '>= 1.15'],
    ['plinthOverPipelinedFloor', 'plinth/floor-pipelined req/s', ''],
    ['plinthCpuOverFloor', 'plinth/floor CPU per request', ''],
    ['withTenantTxOverReqDb', 'withTenantTx/req.db route req/s', '>= 0.95'],
  ]
  return targets
    .filter(([key]) => ratios[key] !== undefined)
    .map(([key, what, target]) => `${what} ${ratios[key]}${target ? ` (target ${target})` : ''}`)
    .join('; ')
}

try {
  const read = KINDS.includes('read') ? await measure('read') : undefined
  const write = KINDS.includes('write') ? await measure('write') : undefined
  const report = { at: new Date().toISOString(), code, machine: machine(), rounds: ROUNDS, durationSeconds: DURATION, connections: CONNECTIONS, pool: Number(POOL), addedRoundTripMs: RTT_MS, perRequest, read, write }
  const table = (title: string, r: Awaited<ReturnType<typeof measure>>) =>
    [
      `### ${title}`,
      '',
      '| server | median req/s | p50 ms | p99 ms | server CPU µs/request | PostgreSQL CPU µs/request |',
      '|---|---|---|---|---|---|',
      ...Object.entries(r.summary).map(([name, s]) => `| ${name} | ${s.reqPerSec} | ${s.p50} | ${s.p99} | ${s.cpuMicrosPerRequest ?? 'n/a'} | ${s.postgresCpuMicrosPerRequest ?? 'n/a'} |`),
      '',
      targetsLine(title.startsWith('GET') ? 'read' : 'write', r.ratios),
      '',
      ...safeguards(r),
    ].join('\n')
  const markdown = [
    `## plinth bench, ${report.at}`,
    '',
    `Code: ${report.code ? `${report.code.commit}${report.code.modified ? ' with uncommitted changes' : ''}` : 'unknown'}. ${report.machine}; ${ROUNDS} interleaved rounds of ${DURATION} s per server, ${CONNECTIONS} connections, pool ${POOL}.`,
    RTT_MS > 0 ? `PostgreSQL reached through bench/latency-proxy.ts, adding ${RTT_MS} ms to each round trip.` : 'PostgreSQL on loopback.',
    `Per plinth request (warm caches, counted): ${perRequest.statements} statements in ${perRequest.roundTrips} round trips and ${perRequest.writes} socket writes. The floor: 3 in 3 (3 writes); floor-pipelined: 3 in 2 (2 writes); express: 4 in 4 (4 writes).`,
    '',
    ...(read ? [table('GET /items?limit=20 (20 rows)', read)] : []),
    ...(write ? [table('POST /items', write)] : []),
  ].join('\n')
  process.stdout.write(markdown + '\n')
  const file = path.join(PROJECT_ROOT, 'bench/results', `bench-${report.at.replace(/[:.]/g, '-')}`)
  await fs.writeFile(`${file}.json`, JSON.stringify(report, null, 2) + '\n')
  await fs.writeFile(`${file}.md`, markdown + '\n')
} finally {
  for (const server of servers) await server.stop()
  sink.close()
  await proxy?.stop()
  await database.drop()
}
