// npm run bench:jobs: jobs a second on one host, plinth's runner beside graphile-worker alone on
// the same server, each with 2 workers (PLINTH_JOBS_CONCURRENCY's default): a no-op job, and a job
// of one INSERT. graphile-worker alone runs plain tasks on the platform's connection; plinth runs
// each attempt in its tenant's transaction, as its role, spread over BENCH_JOBS_TENANTS tenants
// (default 10; each tenant's jobs run one at a time). BENCH_JOBS jobs a run (default 5000), each
// pair run BENCH_JOBS_ROUNDS times (default 3) and the median kept.
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import pg from 'pg'
import { run, runMigrations } from 'graphile-worker'
import { PROJECT_ROOT } from '../src/app/paths.ts'
import { createTestDatabase } from '../src/testing/database.ts'
import { codeVersion, machine, median, openBenchHost, requireDatabaseUrl } from './support.ts'

requireDatabaseUrl()
const JOBS = Number(process.env.BENCH_JOBS ?? 5000)
const TENANTS = Number(process.env.BENCH_JOBS_TENANTS ?? 10)
const ROUNDS = Number(process.env.BENCH_JOBS_ROUNDS ?? 3)
const CONCURRENCY = 2

// The module a stranger would write: a no-op job and a one-INSERT job.
const MODULE: Record<string, string> = {
  'benchjobs/module.config.ts': `export default { id: 'benchjobs', name: 'Bench jobs', version: '1.0.0', api: '^1.2', permissions: [] }\n`,
  'benchjobs/plugin.ts': `import { sql } from 'drizzle-orm'
export const permissions = []
export default {
  meta: { id: 'benchjobs', name: 'Bench jobs', version: '1.0.0', api: '^1.2' },
  register(ctx) {
    ctx.jobs.define('noop', async () => {})
    ctx.jobs.define('insert', async (payload, job) => { await job.db.execute(sql\`INSERT INTO bench_row (n) VALUES (\${payload.n})\`) })
  },
}
`,
  'benchjobs/migrations/001_rows.sql': 'CREATE TABLE bench_row (id bigserial PRIMARY KEY, n int NOT NULL);\n',
}

async function untilEmpty(pool: pg.Pool) {
  for (;;) {
    const { rows } = await pool.query('SELECT count(*)::int AS n FROM graphile_worker._private_jobs')
    if (rows[0].n === 0) return
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

/** graphile-worker alone; with `queues`, one named queue per would-be tenant, as plinth files them. */
async function bare(task: 'noop' | 'insert', queues = false): Promise<number> {
  const database = await createTestDatabase()
  const pool = new pg.Pool({ connectionString: database.env.DATABASE_URL, max: CONCURRENCY + 2 })
  try {
    await runMigrations({ pgPool: pool, logger: quiet })
    await pool.query('CREATE TABLE bench_row (id bigserial PRIMARY KEY, n int NOT NULL)')
    await pool.query(`SELECT graphile_worker.add_job($1, json_build_object('n', g), queue_name := CASE WHEN $3 THEN 'q' || (g % $4) END) FROM generate_series(1, $2) g`, [task, JOBS, queues, TENANTS])
    const started = performance.now()
    const runner = await run({
      pgPool: pool,
      concurrency: CONCURRENCY,
      pollInterval: 100,
      noHandleSignals: true,
      logger: quiet,
      parsedCronItems: [],
      taskList: {
        noop: async () => {},
        insert: async (payload, helpers) => {
          await helpers.withPgClient((client) => client.query('INSERT INTO bench_row (n) VALUES ($1)', [(payload as { n: number }).n]))
        },
      },
    })
    await untilEmpty(pool)
    const seconds = (performance.now() - started) / 1000
    await runner.stop()
    return JOBS / seconds
  } finally {
    await pool.end()
    await database.drop()
  }
}

async function plinth(task: 'noop' | 'insert', moduleDir: string): Promise<number> {
  const database = await createTestDatabase()
  const host = await openBenchHost({ ...database.env, PLINTH_MODULE_DIRS: moduleDir, PLINTH_MODULES: 'benchjobs', PLINTH_JOBS_CONCURRENCY: String(CONCURRENCY), PLINTH_JOBS_POLL_MS: '100' })
  try {
    const { registerModules } = await import('../src/http/mount-modules.ts')
    await registerModules(host)
    const ids: string[] = []
    for (let i = 0; i < TENANTS; i++) ids.push((await host.tenants.create({ code: `bench${i}`, name: `Bench ${i}` })).id)
    await host.pool.query(
      `SELECT public.sys_job_add(($1::uuid[])[(g % $3) + 1], 'benchjobs', $2, json_build_object('n', g), NULL, NULL, NULL, NULL) FROM generate_series(1, $4) g`,
      [ids, task, TENANTS, JOBS],
    )
    const started = performance.now()
    await host.jobs.start()
    await untilEmpty(host.pool)
    const seconds = (performance.now() - started) / 1000
    await host.jobs.stop()
    return JOBS / seconds
  } finally {
    await host.close()
    await database.drop()
  }
}

const quiet = new (await import('graphile-worker')).Logger(() => () => {})

const moduleDir = await fs.mkdtemp(path.join(os.tmpdir(), 'plinth-bench-jobs-'))
for (const [file, text] of Object.entries(MODULE)) {
  await fs.mkdir(path.dirname(path.join(moduleDir, file)), { recursive: true })
  await fs.writeFile(path.join(moduleDir, file), text)
}
const results: Record<string, { graphileWorker: number; graphileWorkerQueues: number; plinth: number; ratio: number; ratioToQueues: number }> = {}
try {
  for (const task of ['noop', 'insert'] as const) {
    const samples = { graphileWorker: [] as number[], graphileWorkerQueues: [] as number[], plinth: [] as number[] }
    for (let round = 0; round < ROUNDS; round++) {
      samples.graphileWorker.push(await bare(task))
      samples.graphileWorkerQueues.push(await bare(task, true))
      samples.plinth.push(await plinth(task, moduleDir))
    }
    const gw = Math.round(median(samples.graphileWorker))
    const gwq = Math.round(median(samples.graphileWorkerQueues))
    const pl = Math.round(median(samples.plinth))
    const ratio = (a: number, b: number) => Math.round((a / b) * 100) / 100
    results[task] = { graphileWorker: gw, graphileWorkerQueues: gwq, plinth: pl, ratio: ratio(pl, gw), ratioToQueues: ratio(pl, gwq) }
    process.stdout.write(
      `${task.padEnd(7)} graphile-worker alone ${String(gw).padStart(6)} jobs/s, with ${TENANTS} named queues ${String(gwq).padStart(6)}   plinth ${String(pl).padStart(6)} jobs/s   plinth / alone ${results[task].ratio}, / queues ${results[task].ratioToQueues}\n`,
    )
  }
} finally {
  await fs.rm(moduleDir, { recursive: true, force: true })
}

const file = path.join(PROJECT_ROOT, 'bench/results', `jobs-${new Date().toISOString().replace(/[:.]/g, '-')}.json`)
await fs.writeFile(file, JSON.stringify({ at: new Date().toISOString(), node: process.version, code: codeVersion(), machine: machine(), jobs: JOBS, tenants: TENANTS, concurrency: CONCURRENCY, rounds: ROUNDS, results }, null, 2) + '\n')
process.stdout.write(`written to ${path.relative(PROJECT_ROOT, file)}\n`)
