// npm run bench:citus (opt-in): plinth on the local Citus cluster (scripts/citus-cluster.sh: a
// coordinator and two workers) beside plinth on one plain PostgreSQL, the same load on each:
// requests spread over BENCH_CITUS_TENANTS tenants (GET a page of items, POST an item), rounds
// interleaved; then the time to move one tenant holding 10,000 rows to the other worker.
//
// Three PostgreSQL instances share this machine's cores with plinth and the load generator: the
// figures measure what the cluster adds to a request (a hop from coordinator to worker, two-phase
// bookkeeping), not what it gains by spreading tenants over machines.
import fs from 'node:fs/promises'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import pg from 'pg'
import { PROJECT_ROOT } from '../src/app/paths.ts'
import { moveTenant, nodeName, tenantNode, workerNodes } from '../src/tenancy/placement.ts'
import { createTestDatabase, type TestDatabase } from '../src/testing/database.ts'
import { buildPlinth, codeVersion, load, machine, median, openBenchHost, requireDatabaseUrl, startServer, type Load } from './support.ts'

const plainUrl = requireDatabaseUrl()
const citusUrl = process.env.PLINTH_CITUS_URL ?? 'postgres://postgres@127.0.0.1:9700/postgres'
const TENANTS = Number(process.env.BENCH_CITUS_TENANTS ?? 20)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)
const MOVE_ROWS = 10_000

try {
  const probe = new pg.Client({ connectionString: citusUrl })
  await probe.connect()
  await probe.end()
} catch {
  process.stderr.write(`No Citus coordinator at ${citusUrl}: start one with scripts/citus-cluster.sh up (Citus installed), or set PLINTH_CITUS_URL.\n`)
  process.exit(2)
}
buildPlinth()

/** A fresh database on `serverUrl` with TENANTS tenants, 20 items each, and a key each. */
async function prepare(serverUrl: string): Promise<{ database: TestDatabase; keys: string[] }> {
  const previous = process.env.DATABASE_URL
  process.env.DATABASE_URL = serverUrl
  const database = await createTestDatabase()
  process.env.DATABASE_URL = previous
  const host = await openBenchHost({ ...database.env, PLINTH_DEFAULT_MODULES: 'inventory' } as Record<string, string>)
  const keys: string[] = []
  try {
    for (let i = 0; i < TENANTS; i++) {
      const tenant = await host.tenants.create({ code: `t${i}`, name: `Tenant ${i}` })
      await host.pool.query(
        `INSERT INTO ${tenant.schema}.items (sku, name, quantity) SELECT 'sku-' || g, 'item ' || g, g FROM generate_series(1, 20) g`,
      )
      await host.roles.create(tenant, 'bench')
      for (const p of ['inventory.items.read', 'inventory.items.create']) await host.roles.grant(tenant, 'bench', p)
      keys.push((await host.createKey(tenant.code, 'bench', ['bench'])).key)
    }
  } finally {
    await host.close()
  }
  return { database, keys }
}

const targets = { postgres: await prepare(plainUrl), citus: await prepare(citusUrl) }
const report: Record<string, unknown> = {
  at: new Date().toISOString(),
  code: codeVersion(),
  machine: machine(),
  tenants: TENANTS,
  rounds: ROUNDS,
  // The local cluster runs without fsync (scripts/citus-cluster.sh); the plain server as it is set up.
  settings: { postgres: await durability(plainUrl), citus: await durability(citusUrl) },
}

async function durability(url: string) {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    const setting = async (name: string) => (await client.query(`SELECT current_setting($1) AS v`, [name])).rows[0].v as string
    return { fsync: await setting('fsync'), synchronous_commit: await setting('synchronous_commit') }
  } finally {
    await client.end()
  }
}

try {
  const servers = {
    postgres: await startServer('plinth-postgres', 'dist/main.js', { ...targets.postgres.database.env, PORT: '0', LOG_LEVEL: 'info', DB_POOL_MAX: '10' } as Record<string, string>),
    citus: await startServer('plinth-citus', 'dist/main.js', { ...targets.citus.database.env, PORT: '0', LOG_LEVEL: 'info', DB_POOL_MAX: '10' } as Record<string, string>),
  }
  try {
    let sku = 0
    const run = (name: keyof typeof targets, method: 'GET' | 'POST') => {
      const keys = targets[name].keys
      let turn = 0
      return load({
        url: `${servers[name].url}/api/plugins/inventory/items${method === 'GET' ? '?limit=20' : ''}`,
        method,
        requests: [
          {
            setupRequest: (req: any) => ({
              ...req,
              headers: { ...req.headers, 'content-type': 'application/json', authorization: `Bearer ${keys[turn++ % keys.length]}` },
              ...(method === 'POST' ? { body: JSON.stringify({ sku: `bench-${process.pid}-${sku++}`, name: 'bench', quantity: 1 }) } : {}),
            }),
          },
        ],
      })
    }
    // Warm both: every tenant's catalog in every pooled backend.
    for (const name of ['postgres', 'citus'] as const) await run(name, 'GET')
    const results: Record<string, Record<string, Load[]>> = { postgres: { GET: [], POST: [] }, citus: { GET: [], POST: [] } }
    for (let round = 0; round < ROUNDS; round++) {
      for (const method of ['GET', 'POST'] as const) {
        for (const name of round % 2 ? (['citus', 'postgres'] as const) : (['postgres', 'citus'] as const)) {
          const result = await run(name, method)
          results[name][method].push(result)
          process.stderr.write(`round ${round + 1} ${name} ${method}: ${Math.round(result.reqPerSec)} req/s, p99 ${result.p99} ms, non-2xx ${result.non2xx}, errors ${result.errors}\n`)
        }
      }
    }
    const summary = (loads: Load[]) => ({
      reqPerSec: Math.round(median(loads.map((l) => l.reqPerSec))),
      p99: median(loads.map((l) => l.p99)),
      non2xx: loads.reduce((n, l) => n + l.non2xx, 0),
      errors: loads.reduce((n, l) => n + l.errors, 0),
    })
    const requests: Record<string, unknown> = {}
    for (const method of ['GET', 'POST']) {
      const postgres = summary(results.postgres[method])
      const citus = summary(results.citus[method])
      requests[method] = { postgres, citus, citusOverPostgres: +(citus.reqPerSec / postgres.reqPerSec).toFixed(3) }
    }
    report.requests = requests
  } finally {
    await servers.postgres.stop()
    await servers.citus.stop()
  }

  // One tenant with 10,000 rows moved to the other worker and back, with nothing else running.
  const host = await openBenchHost(targets.citus.database.env as Record<string, string>)
  try {
    const tenant = await host.tenants.get('t0')
    await host.pool.query(`INSERT INTO ${tenant.schema}.items (sku, name, quantity) SELECT 'move-' || g, 'item ' || g, g FROM generate_series(1, $1::int) g`, [MOVE_ROWS])
    const workers = await workerNodes(host.pool)
    const moves: number[] = []
    for (let i = 0; i < 4; i++) {
      const here = (await tenantNode(host.pool, tenant))!
      const there = workers.find((w) => nodeName(w) !== nodeName(here))!
      const started = performance.now()
      await moveTenant(host.pool, tenant, nodeName(there))
      moves.push(Math.round(performance.now() - started))
    }
    report.move = { rows: MOVE_ROWS + 20, msEach: moves, medianMs: median(moves), mode: 'block_writes' }
    process.stderr.write(`move of one tenant with ${MOVE_ROWS + 20} rows: ${moves.join(', ')} ms\n`)
  } finally {
    await host.close()
  }
} finally {
  await targets.postgres.database.drop()
  await targets.citus.database.drop()
}

const file = path.join(PROJECT_ROOT, 'bench/results', `citus-${(report.at as string).replace(/[:.]/g, '-')}.json`)
await fs.mkdir(path.dirname(file), { recursive: true })
await fs.writeFile(file, JSON.stringify(report, null, 2) + '\n')
process.stdout.write(JSON.stringify(report, null, 2) + '\n')
process.stdout.write(`written to ${path.relative(PROJECT_ROOT, file)}\n`)
