// npm run bench:scale: plinth with BENCH_TENANTS (1,000) tenants on one PostgreSQL. Bulk
// provisioning at each concurrency, provisioning all and one, a migrate with nothing to do, one
// new module migration applied to all (and the same DDL sent bare), host start time and memory,
// and requests spread over every tenant with a key each, with the CPU each side spent on them.
import { spawn } from 'node:child_process'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { PROJECT_ROOT } from '../src/app/paths.ts'
import { readMigrations } from '../src/tenancy/migration-files.ts'
import { stepsFromScratch, type MigrationSource } from '../src/tenancy/migrations.ts'
import { createTestDatabase } from '../src/testing/database.ts'
import pg from 'pg'
import { buildPlinth, codeVersion, cpuSeconds, load, machine, median, openBenchHost, postgresCpu, postgresCpuSecondsBetween, requireDatabaseUrl, startServer } from './support.ts'

requireDatabaseUrl()
buildPlinth()
const TENANTS = Number(process.env.BENCH_TENANTS ?? 1000)
const CONCURRENCY = Number(process.env.BENCH_PROVISION_CONCURRENCY ?? 2)
const BATCH = Number(process.env.BENCH_PROVISION_BATCH ?? 25)
const SWEEP = (process.env.BENCH_PROVISION_SWEEP ?? '1,2,4,8').split(',').map(Number)
const SWEEP_TENANTS = Number(process.env.BENCH_PROVISION_SWEEP_TENANTS ?? 500)
const FEW_TENANTS = 100
const STARTS = 5
const ms = (n: number) => Math.round(n * 10) / 10

// A module of the bench's own, so that adding a migration to it leaves the repo untouched.
const moduleDir = await fs.mkdtemp(path.join(os.tmpdir(), 'plinth-scale-'))
await fs.mkdir(path.join(moduleDir, 'probe/migrations'), { recursive: true })
await fs.writeFile(path.join(moduleDir, 'probe/module.config.ts'), `export default { id: 'probe', name: 'Probe', version: '1.0.0', api: '1.x', permissions: ['probe.things.read'] }\n`)
await fs.writeFile(
  path.join(moduleDir, 'probe/plugin.ts'),
  `export const permissions = ['probe.things.read']\nexport default { meta: { id: 'probe', name: 'Probe', version: '1.0.0', api: '1.x' }, async register() {} }\n`,
)
await fs.writeFile(path.join(moduleDir, 'probe/migrations/001_things.sql'), 'CREATE TABLE probe_things (id serial PRIMARY KEY);\n')

const database = await createTestDatabase()
const emptyDatabase = await createTestDatabase()
const env = { ...database.env, PLINTH_MODULE_DIRS: moduleDir, DB_POOL_MAX: '10' } as Record<string, string>

const report: Record<string, unknown> = { at: new Date().toISOString(), code: codeVersion(), machine: machine(), tenants: TENANTS, postgres: await postgresSettings(env.DATABASE_URL) }
const servers: { stop(): Promise<void> }[] = []

try {
  // Which concurrency onboards fastest: the same list of tenants created in bulk, on a fresh
  // database each time, at each concurrency (batches of BATCH). Beside each, the floor: the same
  // DDL (schema, role, every file) sent bare by plain clients, BATCH tenants to a transaction, as
  // many at once, with no plinth, no tenant rows and no ledger.
  const sweep: { concurrency: number; tenants: number; msPerTenant: number; floorMsPerTenant: number }[] = []
  for (const concurrency of SWEEP) {
    const fresh = await createTestDatabase()
    try {
      const sweepHost = await openBenchHost({ ...fresh.env, PLINTH_MODULE_DIRS: moduleDir, DB_POOL_MAX: '10' })
      const t0 = performance.now()
      const made = await sweepHost.tenants.createMany(
        Array.from({ length: SWEEP_TENANTS }, (_, i) => ({ code: `s${i}`, name: `Sweep ${i}` })),
        { concurrency, batchSize: BATCH },
      )
      const msPerTenant = ms((performance.now() - t0) / SWEEP_TENANTS)
      // What a new tenant got: the host's files and those of the modules enabled for it.
      const { rows } = await sweepHost.pool.query<{ id: string }>('SELECT module_id AS id FROM public.sys_tenant_module WHERE tenant_id = $1', [made.created[0].id])
      const enabled = new Set(['host', ...rows.map((r) => r.id)])
      const sources = sweepHost.migrationSources().filter((s) => enabled.has(s.source))
      await sweepHost.close()
      const floorMsPerTenant = ms(await provisionFloor(fresh.env.DATABASE_URL!, sources, concurrency))
      sweep.push({ concurrency, tenants: made.created.length, msPerTenant, floorMsPerTenant })
    } finally {
      await fresh.drop()
    }
  }
  report.provisionConcurrency = { batchSize: BATCH, runs: sweep }
  process.stderr.write(`provisioning by concurrency: ${JSON.stringify(sweep)}\n`)

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
  // Creating thousands of schemas leaves autovacuum and a checkpoint with work that would land on
  // whatever is measured next. Do that work now, once, and say how long it took.
  const settled = performance.now()
  await host.pool.query('VACUUM (ANALYZE)')
  await host.pool.query('CHECKPOINT')
  report.settleSeconds = ms((performance.now() - settled) / 1000)

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

  // A read-only command from a shell, as an operator runs it: wall time of the whole process
  // (tsx, the database, every tenant printed), five runs. It imports no module code and migrates nothing.
  const readRuns: number[] = []
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now()
    await new Promise<void>((resolve, reject) => {
      const child = spawn(process.execPath, [path.join(PROJECT_ROOT, 'bin/plinth.js'), 'tenant', 'list'], { env: { ...process.env, ...env, PLINTH_ENV_FILE: 'none' }, stdio: 'ignore' })
      child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`plinth tenant list exited ${code}`))))
    })
    readRuns.push(performance.now() - t0)
  }
  report.tenantListCliMs = { medianMs: ms(median(readRuns)), runs: readRuns.map(ms) }

  // A new migration for a module every tenant has: applied to all of them. Beside it, the floor:
  // the same two statements sent to every schema by plain clients, as many at once as the host's
  // migrate uses, with no lock, no ledger and no role: PostgreSQL's own cost of that DDL. The floor
  // runs before and after plinth, so that neither has the quieter machine.
  const schemas = (await host.pool.query<{ schema: string }>('SELECT schema_name AS schema FROM public.sys_tenant ORDER BY code')).rows.map((r) => r.schema)
  const floorBefore = await migrationFloor(env.DATABASE_URL, schemas, host.migrationConcurrency, 'floor_a')
  await fs.writeFile(path.join(moduleDir, 'probe/migrations/002_more.sql'), 'ALTER TABLE probe_things ADD COLUMN note text;\nCREATE INDEX probe_things_note ON probe_things (note);\n')
  const probe = host.modules.find((m) => m.id === 'probe')!
  probe.migrations = await readMigrations(path.join(moduleDir, 'probe/migrations'))
  const m0 = performance.now()
  const applied = await host.migrate()
  report.newMigration = {
    totalSeconds: ms((performance.now() - m0) / 1000),
    tenants: applied.tenants.filter((r) => r.status === 'ok').length,
    failed: applied.tenants.filter((r) => r.status !== 'ok').length,
    concurrency: host.migrationConcurrency,
  }
  const floorAfter = await migrationFloor(env.DATABASE_URL, schemas, host.migrationConcurrency, 'floor_b')
  report.newMigrationFloor = { secondsBefore: ms(floorBefore), secondsAfter: ms(floorAfter), tenants: schemas.length, concurrency: host.migrationConcurrency }
  process.stderr.write(`new migration: ${JSON.stringify(report.newMigration)}; floor: ${JSON.stringify(report.newMigrationFloor)}\n`)

  // One ALTER TABLE ... ADD COLUMN ... DEFAULT in a new schema, now that every tenant exists, against
  // the same statement on a database of its own with no tenants: PostgreSQL 15 checks such a
  // statement against every index in the database (see docs/benchmarks.md).
  report.alterWithDefault = {
    msWithTenants: ms(await timeAlterWithDefault(env.DATABASE_URL)),
    msEmptyDatabase: ms(await timeAlterWithDefault(emptyDatabase.env.DATABASE_URL!)),
  }
  process.stderr.write(`alter with default: ${JSON.stringify(report.alterWithDefault)}\n`)

  // A key per tenant, each holding its tenant's admin role.
  const keys: string[] = []
  for (let i = 0; i < TENANTS; i++) keys.push((await host.createKey(`t${String(i).padStart(4, '0')}`, 'bench', ['admin'])).key)
  // The keys' writes are a row or two per tenant: below autovacuum's thresholds, so a CHECKPOINT is
  // all that is left to settle (a whole-database VACUUM here took 9 minutes at 10,000 tenants and
  // changed no later figure: the starts below are timed five times).
  const settledAgain = performance.now()
  await host.pool.query('CHECKPOINT')
  report.settleAfterKeysSeconds = ms((performance.now() - settledAgain) / 1000)
  await host.close()

  // Host start, five times: the first after the bulk writes above is a cold start (PostgreSQL's
  // caches and the OS's hold other pages); the next four are what a restart or a new instance costs.
  const timedStarts = async (name: string, serverEnv: Record<string, string>) => {
    const seconds: number[] = []
    let started: Awaited<ReturnType<typeof startServer>> | undefined
    for (let i = 0; i < STARTS; i++) {
      await started?.stop()
      const t0 = performance.now()
      started = await startServer(name, 'dist/main.js', serverEnv)
      seconds.push(Math.round((performance.now() - t0) / 10) / 100)
    }
    const rssMiB = Math.round(Number(/VmRSS:\s+(\d+)/.exec(await fs.readFile(`/proc/${started!.child.pid}/status`, 'utf8'))![1]) / 1024)
    return { server: started!, first: seconds[0], warm: Math.round(median(seconds.slice(1)) * 100) / 100, seconds, rssMiB }
  }
  const starts = await timedStarts('plinth', { ...env, LOG_LEVEL: 'info', PORT: '0' })
  const server = starts.server
  servers.push(server)
  // The same on a database with no tenant (its first start migrates it, so it is not timed): what every start costs.
  const emptyEnv = { ...env, DATABASE_URL: emptyDatabase.env.DATABASE_URL!, LOG_LEVEL: 'info', PORT: '0' }
  await (await startServer('plinth-empty', 'dist/main.js', emptyEnv)).stop()
  const emptyStarts = await timedStarts('plinth-empty', emptyEnv)
  await emptyStarts.server.stop()
  report.hostStart = {
    firstSecondsToListening: starts.first,
    warmSecondsToListening: starts.warm,
    seconds: starts.seconds,
    rssMiB: starts.rssMiB,
    withNoTenant: { firstSecondsToListening: emptyStarts.first, warmSecondsToListening: emptyStarts.warm, seconds: emptyStarts.seconds, rssMiB: emptyStarts.rssMiB },
  }
  process.stderr.write(`host start: ${JSON.stringify(report.hostStart)}\n`)

  const url = `${server.url}/api/plugins/inventory/items?limit=20`
  // Both loads build each request in setupRequest, so autocannon (on the same two cores) does the
  // same work for each; only the key, and so the tenant, differs.
  let turn = 0
  const withKey = (next: () => string) => [{ setupRequest: (req: any) => ({ ...req, headers: { ...req.headers, authorization: `Bearer ${next()}` } }) }]
  // Each measured load also reads how much CPU the plinth process and PostgreSQL spent on it.
  const cpu = { spread: { plinth: 0, postgres: 0, requests: 0 }, single: { plinth: 0, postgres: 0, requests: 0 } }
  const measured = async (kind: keyof typeof cpu, run: () => ReturnType<typeof load>) => {
    const [p0, g0] = [await cpuSeconds(server.child.pid!), await postgresCpu()]
    const result = await run()
    const [p1, g1] = [await cpuSeconds(server.child.pid!), await postgresCpu()]
    cpu[kind].plinth += (p1 ?? 0) - (p0 ?? 0)
    cpu[kind].postgres += postgresCpuSecondsBetween(g0, g1) ?? 0
    cpu[kind].requests += result.requests
    return result
  }
  const spread = (duration = 5) => load({ url, duration, requests: withKey(() => keys[turn++ % keys.length]) })
  const single = () => measured('single', () => load({ url, requests: withKey(() => keys[0]) }))
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
    warm.push((await measured('spread', () => spread())).reqPerSec)
    one.push((await single()).reqPerSec)
  }
  report.requests = {
    coldSpreadReqPerSec: Math.round(cold.reqPerSec),
    warmSpreadReqPerSec: Math.round(median(warm)),
    singleTenantReqPerSec: Math.round(median(one)),
    warmSpreadOverSingle: +(median(warm) / median(one)).toFixed(3),
  }
  // The same statements with no plinth: plain clients, as many as the host's pool, each request's
  // transaction as plinth sends it (search_path, the list query, COMMIT), spread and on one tenant.
  await server.stop()
  servers.length = 0
  report.floorRequests = await floorSpread(env.DATABASE_URL, schemas, Number(env.DB_POOL_MAX))
  // Where a spread request's extra cost lands: CPU µs per request, plinth's process and PostgreSQL's.
  const perRequest = (seconds: number, requests: number) => Math.round((seconds * 1e6) / Math.max(1, requests))
  report.cpuMicrosecondsPerRequest = {
    spread: { plinth: perRequest(cpu.spread.plinth, cpu.spread.requests), postgres: perRequest(cpu.spread.postgres, cpu.spread.requests) },
    singleTenant: { plinth: perRequest(cpu.single.plinth, cpu.single.requests), postgres: perRequest(cpu.single.postgres, cpu.single.requests) },
  }
  process.stdout.write(JSON.stringify(report, null, 2) + '\n')
  const file = path.join(PROJECT_ROOT, 'bench/results', `scale-${String(report.at).replace(/[:.]/g, '-')}.json`)
  await fs.writeFile(file, JSON.stringify(report, null, 2) + '\n')
} finally {
  for (const server of servers) await server.stop()
  // BENCH_KEEP_DATABASE=1 leaves the tenants' database for a closer look (profiles, EXPLAIN).
  if (process.env.BENCH_KEEP_DATABASE === '1') process.stderr.write(`kept: ${database.env.DATABASE_URL}\n`)
  else await database.drop()
  await emptyDatabase.drop()
  await fs.rm(moduleDir, { recursive: true, force: true })
}

/**
 * Milliseconds a tenant for PostgreSQL's own cost of provisioning: SWEEP_TENANTS schemas, each with
 * a role and every file new tenants get, sent bare, BATCH tenants to a transaction, `concurrency`
 * transactions at once, on a fresh database. The roles are dropped afterwards (they belong to the
 * server, not the database).
 */
async function provisionFloor(connectionString: string, sources: MigrationSource[], concurrency: number) {
  const prefix = `bench_floor_${process.pid}_${concurrency}`
  const script = (i: number) =>
    [
      `CREATE SCHEMA floor_${i}; CREATE ROLE ${prefix}_${i} NOLOGIN; GRANT ${prefix}_${i} TO CURRENT_USER; GRANT USAGE, CREATE ON SCHEMA floor_${i} TO ${prefix}_${i};`,
      `SET LOCAL search_path TO floor_${i}, public; SET LOCAL ROLE ${prefix}_${i};`,
      ...sources.flatMap((source) => stepsFromScratch(source).map((step) => `${step.sql}\n;`)),
      'SET LOCAL ROLE NONE;',
    ].join('\n')
  const batches = Array.from({ length: Math.ceil(SWEEP_TENANTS / BATCH) }, (_, b) => Array.from({ length: Math.min(BATCH, SWEEP_TENANTS - b * BATCH) }, (_, i) => b * BATCH + i))
  const t0 = performance.now()
  await sendFromClients(connectionString, concurrency, batches.map((batch) => `BEGIN;\n${batch.map(script).join('\n')}\nCOMMIT`))
  const elapsed = performance.now() - t0
  const client = new pg.Client({ connectionString })
  await client.connect()
  try {
    for (let i = 0; i < SWEEP_TENANTS; i++) await client.query(`DROP SCHEMA floor_${i} CASCADE; DROP ROLE ${prefix}_${i}`)
  } finally {
    await client.end()
  }
  return elapsed / SWEEP_TENANTS
}

/** Milliseconds for one ALTER TABLE ... ADD COLUMN ... DEFAULT on a new table, rolled back: median of 5. */
async function timeAlterWithDefault(connectionString: string) {
  const client = new pg.Client({ connectionString })
  await client.connect()
  const runs: number[] = []
  try {
    for (let i = 0; i < 5; i++) {
      await client.query('BEGIN; CREATE SCHEMA bench_alter_probe; CREATE TABLE bench_alter_probe.t (id int)')
      const t0 = performance.now()
      await client.query(`ALTER TABLE bench_alter_probe.t ADD COLUMN c text NOT NULL DEFAULT 'x'`)
      runs.push(performance.now() - t0)
      await client.query('ROLLBACK')
    }
  } finally {
    await client.end()
  }
  return median(runs)
}

/** Seconds to send one ALTER TABLE ... ADD COLUMN and one CREATE INDEX to every schema, `concurrency` at a time. */
async function migrationFloor(connectionString: string, schemas: string[], concurrency: number, column: string) {
  const t0 = performance.now()
  await sendFromClients(
    connectionString,
    concurrency,
    schemas.map((schema) => `BEGIN; SET LOCAL search_path TO "${schema}"; ALTER TABLE probe_things ADD COLUMN ${column} text; CREATE INDEX probe_things_${column} ON probe_things (${column}); COMMIT`),
  )
  return (performance.now() - t0) / 1000
}

/** Sends each script once, from `concurrency` plain clients at once, each taking the next when its last is done. */
async function sendFromClients(connectionString: string, concurrency: number, scripts: string[]) {
  let next = 0
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      const client = new pg.Client({ connectionString })
      client.on('error', () => {}) // a sibling's failure drops the database under it; that failure is the one reported
      await client.connect()
      try {
        for (let i = next++; i < scripts.length; i = next++) await client.query(scripts[i])
      } finally {
        await client.end()
      }
    }),
  )
}

/** The request's database work with nothing else: spread over every schema, then on one; queries/s and PostgreSQL CPU µs each. */
async function floorSpread(connectionString: string, schemas: string[], connections: number) {
  const clients = await Promise.all(
    Array.from({ length: connections }, async () => {
      const client = new pg.Client({ connectionString })
      await client.connect()
      return client
    }),
  )
  const run = async (pick: () => string, seconds: number) => {
    let done = 0
    const until = Date.now() + seconds * 1000
    const cpu0 = await postgresCpu()
    await Promise.all(
      clients.map(async (client) => {
        while (Date.now() < until) {
          await client.query(`BEGIN; SET LOCAL search_path TO "${pick()}", public`)
          await client.query('SELECT id, name, sku, quantity, created_at, updated_at, count(*) OVER ()::int AS total FROM items ORDER BY name, id LIMIT 20 OFFSET 0')
          await client.query('COMMIT')
          done++
        }
      }),
    )
    const spent = postgresCpuSecondsBetween(cpu0, await postgresCpu())
    return { perSecond: done / seconds, postgresCpuMicroseconds: spent === null ? null : (spent * 1e6) / done }
  }
  try {
    let turn = 0
    const spread = () => schemas[turn++ % schemas.length]
    // Warm as the plinth loads were: every schema asked for as often as there are connections.
    while (turn < schemas.length * connections) await run(spread, 10)
    // A few tenants: spread, but over no more relation files than a backend keeps open
    // (max_files_per_process, 1,000 by default; the list query opens items and its 3 indexes).
    let fewTurn = 0
    const few = () => schemas[fewTurn++ % Math.min(FEW_TENANTS, schemas.length)]
    const spreadRuns = []
    const fewRuns = []
    const oneRuns = []
    for (let round = 0; round < 3; round++) {
      spreadRuns.push(await run(spread, 5))
      fewRuns.push(await run(few, 5))
      oneRuns.push(await run(() => schemas[0], 5))
    }
    const perSecond = (runs: { perSecond: number }[]) => median(runs.map((r) => r.perSecond))
    const cpu = (runs: { postgresCpuMicroseconds: number | null }[]) => Math.round(median(runs.map((r) => r.postgresCpuMicroseconds ?? 0)))
    return {
      spreadPerSecond: Math.round(perSecond(spreadRuns)),
      fewTenants: Math.min(FEW_TENANTS, schemas.length),
      fewPerSecond: Math.round(perSecond(fewRuns)),
      singlePerSecond: Math.round(perSecond(oneRuns)),
      spreadOverSingle: +(perSecond(spreadRuns) / perSecond(oneRuns)).toFixed(3),
      fewOverSingle: +(perSecond(fewRuns) / perSecond(oneRuns)).toFixed(3),
      postgresCpuMicrosecondsPerRequest: { spread: cpu(spreadRuns), few: cpu(fewRuns), single: cpu(oneRuns) },
    }
  } finally {
    await Promise.all(clients.map((client) => client.end()))
  }
}

/** The PostgreSQL settings that decide how many tenants' files and catalogs a backend keeps at hand. */
async function postgresSettings(connectionString: string) {
  const client = new pg.Client({ connectionString })
  await client.connect()
  try {
    const { rows } = await client.query<{ name: string; setting: string }>(
      `SELECT name, setting FROM pg_settings WHERE name IN ('server_version', 'max_files_per_process', 'shared_buffers', 'jit', 'shared_preload_libraries')`,
    )
    return Object.fromEntries(rows.map((r) => [r.name, r.setting]))
  } finally {
    await client.end()
  }
}
