// npm run bench:scale: plinth with 1,000 tenants on one PostgreSQL. Provisioning, a migrate with
// nothing to do, one new module migration applied to all, host start time and memory, and
// requests spread over every tenant with a key each.
import { spawn } from 'node:child_process'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { PROJECT_ROOT } from '../src/host/host.ts'
import { readMigrations } from '../src/tenancy/migrations.ts'
import { createTestDatabase } from '../src/testing/database.ts'
import { buildPlinth, load, machine, median, openBenchHost, requireDatabaseUrl, startServer } from './support.ts'

requireDatabaseUrl()
buildPlinth()
const TENANTS = Number(process.env.BENCH_TENANTS ?? 1000)
const CONCURRENCY = Number(process.env.BENCH_PROVISION_CONCURRENCY ?? 2)
const BATCH = Number(process.env.BENCH_PROVISION_BATCH ?? 25)
const ms = (n: number) => Math.round(n * 10) / 10

// A module of the bench's own, so that adding a migration to it leaves the repo untouched.
const pluginDir = await fs.mkdtemp(path.join(os.tmpdir(), 'plinth-scale-'))
await fs.mkdir(path.join(pluginDir, 'probe/migrations'), { recursive: true })
await fs.writeFile(path.join(pluginDir, 'probe/module.config.ts'), `export default { id: 'probe', name: 'Probe', version: '1.0.0', api: '1.x', permissions: ['probe.things.read'] }\n`)
await fs.writeFile(
  path.join(pluginDir, 'probe/plugin.ts'),
  `export const permissions = ['probe.things.read']\nexport default { meta: { id: 'probe', name: 'Probe', version: '1.0.0', api: '1.x' }, async register() {} }\n`,
)
await fs.writeFile(path.join(pluginDir, 'probe/migrations/001_things.sql'), 'CREATE TABLE probe_things (id serial PRIMARY KEY);\n')

const database = await createTestDatabase()
const env = { ...database.env, PLINTH_PLUGIN_DIRS: pluginDir, DB_POOL_MAX: '10' } as Record<string, string>
const report: Record<string, unknown> = { at: new Date().toISOString(), machine: machine(), tenants: TENANTS }
const servers: { stop(): Promise<void> }[] = []

try {
  const host = await openBenchHost(env)
  // Provisioning, in bulk as an operator onboarding many tenants would (tenant create-many): every
  // example module, plus the probe.
  const started = performance.now()
  const bulk = await host.tenants.createMany(
    Array.from({ length: TENANTS }, (_, i) => ({ code: `t${String(i).padStart(4, '0')}`, name: `Tenant ${i}` })),
    { concurrency: CONCURRENCY, batchSize: BATCH },
  )
  if (bulk.failed.length > 0) throw new Error(`provisioning failed: ${JSON.stringify(bulk.failed.slice(0, 3))}`)
  report.provision = { totalSeconds: ms((performance.now() - started) / 1000), concurrency: CONCURRENCY, batchSize: BATCH, msPerTenant: ms((performance.now() - started) / TENANTS) }
  process.stderr.write(`provisioned ${TENANTS}: ${JSON.stringify(report.provision)}\n`)

  // One tenant alone, nothing else running: the per-tenant figure the target speaks of.
  const alone: number[] = []
  for (let i = 0; i < 20; i++) {
    const t0 = performance.now()
    await host.tenants.create({ code: `solo-${i}`, name: 'Solo' })
    alone.push(performance.now() - t0)
  }
  report.provisionOne = { p50Ms: ms(median(alone)), runs: alone.length }

  const noop: number[] = []
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now()
    const result = await host.migrate()
    noop.push(performance.now() - t0)
    if (result.tenants.length > 0) throw new Error('a no-op migrate applied something')
  }
  report.noopMigrate = { medianMs: ms(median(noop)), runs: noop.length }
  const cli0 = performance.now()
  await new Promise<void>((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(PROJECT_ROOT, 'bin/plinth.js'), 'migrate'], { env: { ...process.env, ...env }, stdio: 'ignore' })
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`plinth migrate exited ${code}`))))
  })
  report.noopMigrateCliSeconds = ms((performance.now() - cli0) / 1000)

  // A new migration for a module every tenant has: applied to all of them.
  await fs.writeFile(path.join(pluginDir, 'probe/migrations/002_more.sql'), 'ALTER TABLE probe_things ADD COLUMN note text;\nCREATE INDEX probe_things_note ON probe_things (note);\n')
  const probe = host.modules.find((m) => m.id === 'probe')!
  probe.migrations = await readMigrations(path.join(pluginDir, 'probe/migrations'))
  const m0 = performance.now()
  const applied = await host.migrate()
  report.newMigration = {
    totalSeconds: ms((performance.now() - m0) / 1000),
    tenants: applied.tenants.filter((r) => r.status === 'ok').length,
    failed: applied.tenants.filter((r) => r.status !== 'ok').length,
    concurrency: host.migrationConcurrency,
  }
  process.stderr.write(`new migration: ${JSON.stringify(report.newMigration)}\n`)

  // A key per tenant, each holding its tenant's admin role.
  const keys: string[] = []
  for (let i = 0; i < TENANTS; i++) keys.push((await host.createKey(`t${String(i).padStart(4, '0')}`, 'bench', ['admin'])).key)
  await host.close()

  const s0 = performance.now()
  const server = await startServer('plinth', 'dist/main.js', { ...env, LOG_LEVEL: 'info', PORT: '0' })
  servers.push(server)
  report.hostStart = {
    secondsToListening: ms((performance.now() - s0) / 1000),
    rssMiB: Math.round(Number(/VmRSS:\s+(\d+)/.exec(await fs.readFile(`/proc/${server.child.pid}/status`, 'utf8'))![1]) / 1024),
  }
  process.stderr.write(`host start: ${JSON.stringify(report.hostStart)}\n`)

  const url = `${server.url}/api/plugins/inventory/items?limit=20`
  // Both loads build each request in setupRequest, so autocannon (on the same two cores) does the
  // same work for each; only the key, and so the tenant, differs.
  let turn = 0
  const withKey = (next: () => string) => [{ setupRequest: (req: any) => ({ ...req, headers: { ...req.headers, authorization: `Bearer ${next()}` } }) }]
  const spread = (duration = 5) => load({ url, duration, requests: withKey(() => keys[turn++ % keys.length]) })
  const single = () => load({ url, requests: withKey(() => keys[0]) })
  const cold = await spread()
  // Warm: every tenant's tables known to every pooled backend (10 backends x every tenant's
  // catalog loads), every principal's permissions cached; until then a request may pay for a first
  // visit. The warm-up runs until each tenant was asked for as often as the pool has backends.
  const warmupStarted = performance.now()
  const warmupGoal = keys.length * Number(env.DB_POOL_MAX)
  while (turn < warmupGoal) await spread(10)
  report.warmup = { seconds: ms((performance.now() - warmupStarted) / 1000), requestsPerTenant: ms(turn / keys.length), tenantsTouched: Math.min(turn, keys.length), tenants: keys.length }
  const warm: number[] = []
  const one: number[] = []
  for (let round = 0; round < 3; round++) {
    warm.push((await spread()).reqPerSec)
    one.push((await single()).reqPerSec)
  }
  report.requests = {
    coldSpreadReqPerSec: Math.round(cold.reqPerSec),
    warmSpreadReqPerSec: Math.round(median(warm)),
    singleTenantReqPerSec: Math.round(median(one)),
    warmSpreadOverSingle: +(median(warm) / median(one)).toFixed(3),
  }
  process.stdout.write(JSON.stringify(report, null, 2) + '\n')
  const file = path.join(PROJECT_ROOT, 'bench/results', `scale-${String(report.at).replace(/[:.]/g, '-')}.json`)
  await fs.writeFile(file, JSON.stringify(report, null, 2) + '\n')
} finally {
  for (const server of servers) await server.stop()
  await database.drop()
  await fs.rm(pluginDir, { recursive: true, force: true })
}
