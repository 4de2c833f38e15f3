// plinth on a Citus coordinator (docs/scale-out.md): tenant schemas become distributed schemas,
// spread over the workers; a request runs on its tenant's worker as the tenant's role; the
// platform tables stay on the coordinator; and a tenant moves to another worker while it and
// others serve, losing no acknowledged write. Opt-in: it needs a Citus cluster
// (`npm run test:citus` starts one with scripts/citus-cluster.sh and runs this with the suites
// that apply there).
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { sql as sqlText } from 'drizzle-orm'
import pg from 'pg'
import t from 'tap'
import { PROJECT_ROOT } from '../src/app/paths.ts'
import { createTestDatabase } from '../src/testing/database.ts'
import { startTestHost } from '../src/testing/host.ts'
import { plinth } from './helpers/process.ts'

const citusUrl = process.env.PLINTH_CITUS_URL

if (!citusUrl) {
  t.plan(0, 'Citus tests: run `npm run test:citus` (Citus installed for the local PostgreSQL; it starts a cluster with scripts/citus-cluster.sh), or set PLINTH_CITUS_URL to a coordinator')
} else {
  // createTestDatabase makes each test's database on the coordinator and its workers.
  process.env.DATABASE_URL = citusUrl
  await run(citusUrl)
}

async function run(coordinator: string) {
  // The stranger's bookings module, from a folder outside the project, as on one PostgreSQL.
  const outside = await fs.mkdtemp(path.join(os.tmpdir(), 'plinth-citus-modules-'))
  t.teardown(() => fs.rm(outside, { recursive: true, force: true }))
  await fs.cp(path.join(PROJECT_ROOT, 'test/fixtures/stranger/bookings'), path.join(outside, 'bookings'), { recursive: true })

  const database = await createTestDatabase()
  t.teardown(database.drop)
  // The cluster distributes new schemas by default; this database does not, so what plinth does
  // explicitly is what counts.
  const name = new URL(database.env.DATABASE_URL!).pathname.slice(1)
  await sqlOn(coordinator, `ALTER DATABASE ${name} SET citus.enable_schema_based_sharding TO off`)
  const th = await startTestHost({ database, env: { PLINTH_MODULE_DIRS: outside } })
  t.teardown(th.close)
  const onNode = (node: { host: string; port: number }) => {
    const url = new URL(database.env.DATABASE_URL!)
    url.hostname = node.host
    url.port = String(node.port)
    // Citus hides shards from the catalog on its workers; a test looking for them asks to see them.
    url.searchParams.set('options', '-c citus.override_table_visibility=off')
    return url.toString()
  }
  const codes = ['acme', 'beta', 'gamma', 'delta']
  const tenants = Object.fromEntries(await Promise.all(codes.map(async (code) => [code, await th.createTenant(code)] as const)))
  const keys = Object.fromEntries(await Promise.all(codes.map(async (code) => [code, (await th.host.createKey(code, 'citus', ['admin'])).key] as const)))
  const call = (code: string, method: 'GET' | 'POST', url: string, payload?: object) =>
    th.app.inject({ method, url: `/api/plugins/bookings${url}`, headers: { authorization: `Bearer ${keys[code]}` }, ...(payload ? { payload } : {}) })
  const placement = async (schema: string, table: string) => {
    const rows = await sqlOn<{ host: string; port: number; shard: string }>(
      database.env.DATABASE_URL!,
      `SELECT nodename AS host, nodeport AS port, shard_name AS shard FROM citus_shards WHERE table_name = $1::regclass`,
      [`${schema}.${table}`],
    )
    return rows[0]
  }

  t.test('the host says it runs on Citus; tenant schemas are distributed and spread over the workers; the platform stays on the coordinator', async (t) => {
    t.match(th.logs.find((l) => l.msg === 'database ready'), { citus: /^\d+\.\d+/ })
    const schemas = await sqlOn<{ schema_name: string }>(database.env.DATABASE_URL!, 'SELECT schema_name::text FROM citus_schemas ORDER BY 1')
    t.same(schemas.map((r) => r.schema_name), codes.map((c) => `t_${c}`).sort())
    const nodes = await sqlOn<{ port: number }>(database.env.DATABASE_URL!, `SELECT DISTINCT nodeport AS port FROM citus_shards WHERE citus_table_type = 'schema'`)
    t.equal(nodes.length, 2, 'tenants on both workers')
    const platform = await sqlOn(database.env.DATABASE_URL!, `SELECT logicalrelid FROM pg_dist_partition WHERE logicalrelid::text LIKE 'sys\\_%' OR logicalrelid::text LIKE 'public.%'`)
    t.same(platform, [], 'no platform table is distributed: public stays on the coordinator')
    // tickets' history has an ADD COLUMN with an unnamed CHECK, which Citus refuses: new tenants get its baseline.
    t.ok(await placement('t_acme', 'ticket_comments'), "the tickets module's tables are there, from its baseline")
  })

  t.test("a request runs on its tenant's worker, as its role, and sees its tenant only", async (t) => {
    const created = await call('acme', 'POST', '/bookings', { guest: 'Ada', nights: 2 })
    t.equal(created.statusCode, 201, created.body)
    const where = await placement('t_acme', 'bookings')
    const onWorker = await sqlOn<{ guest: string }>(onNode(where), `SELECT guest FROM ${where.shard}`)
    t.same(onWorker, [{ guest: 'Ada' }], "the row is in the shard on the tenant's worker")
    const owner = await sqlOn<{ tableowner: string }>(onNode(where), 'SELECT pg_get_userbyid(relowner) AS tableowner FROM pg_class WHERE oid = $1::regclass', [where.shard])
    t.same(owner, [{ tableowner: tenants.acme.role }], "the module's tables belong to the tenant's role there")
    t.same((await call('beta', 'GET', '/bookings')).json().bookings, [], 'beta sees none of it')
    const cross = await call('acme', 'POST', '/cross', { other: 'beta' })
    t.ok(cross.statusCode >= 400, 'a module asking for another tenant is refused')
  })

  t.test("the tenant transaction's statement timeout holds on the worker", async (t) => {
    const bounded = await startTestHost({ database, env: { PLINTH_MODULE_DIRS: outside, DB_STATEMENT_TIMEOUT_MS: '300' } })
    t.teardown(bounded.close)
    const started = Date.now()
    await t.rejects(
      bounded.host.withTenantTx(tenants.acme.id, (db) => db.execute(sqlText`SELECT pg_sleep(3) FROM bookings`)),
      { cause: { code: '57014' } },
      'a statement on the tenant worker is cancelled at DB_STATEMENT_TIMEOUT_MS',
    )
    t.ok(Date.now() - started < 2500, `cancelled after ${Date.now() - started} ms, not after the 3 s sleep`)
  })

  t.test('a tenant moves to the other worker while it and another serve: no acknowledged write lost, none crosses tenants, no error but 503', async (t) => {
    await sqlOn(database.env.DATABASE_URL!, `INSERT INTO t_acme.bookings (guest, nights) SELECT 'seed-' || g, 1 + g % 7 FROM generate_series(1, 2000) g`)
    const from = await placement('t_acme', 'bookings')
    const workers = await sqlOn<{ host: string; port: number }>(database.env.DATABASE_URL!, `SELECT nodename AS host, nodeport AS port FROM pg_dist_node WHERE groupid <> 0 ORDER BY nodeid`)
    const to = workers.find((w) => w.port !== from.port)!
    const statuses: Record<number, number> = {}
    const acked: Record<string, string[]> = { acme: [], beta: [] }
    let moving = true
    const writer = async (code: string, n: number) => {
      for (let i = 0; moving; i++) {
        const guest = `${code}-${n}-${i}`
        const res = await call(code, 'POST', '/bookings', { guest, nights: 1 })
        statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1
        if (res.statusCode === 201) acked[code].push(guest)
      }
    }
    const writers = [writer('acme', 1), writer('acme', 2), writer('beta', 1)]
    await new Promise((resolve) => setTimeout(resolve, 500))
    const moved = await plinth(['tenant', 'move', 'acme', '--to', `${to.host}:${to.port}`, '--json'], database.env)
    await new Promise((resolve) => setTimeout(resolve, 500))
    moving = false
    await Promise.all(writers)
    t.equal(moved.code, 0, moved.stderr)
    t.match(JSON.parse(moved.stdout), { tenant: 'acme', from: `${from.host}:${from.port}`, to: `${to.host}:${to.port}` })
    t.equal((await placement('t_acme', 'bookings')).port, to.port, "acme's tables are on the other worker")
    t.comment(`during the move: ${JSON.stringify(statuses)}; ${JSON.parse(moved.stdout).ms} ms`)
    t.same(Object.keys(statuses).filter((s) => s !== '201' && s !== '503'), [], 'no answer but 201 and 503')
    t.ok(acked.acme.length > 0 && acked.beta.length > 0, 'both tenants were written to during the move')
    for (const code of ['acme', 'beta']) {
      const kept = await sqlOn<{ guest: string }>(database.env.DATABASE_URL!, `SELECT guest FROM t_${code}.bookings WHERE guest = ANY($1)`, [acked[code]])
      const missing = acked[code].filter((guest) => !kept.some((row) => row.guest === guest))
      t.same(missing, [], `every write acknowledged to ${code} is there (${acked[code].length})`)
    }
    const crossed = await sqlOn(database.env.DATABASE_URL!, `SELECT guest FROM t_acme.bookings WHERE guest LIKE 'beta-%' UNION ALL SELECT guest FROM t_beta.bookings WHERE guest NOT LIKE 'beta-%'`)
    t.same(crossed, [], 'no row crossed tenants')
    const count = await call('acme', 'GET', '/bookings')
    t.equal(count.statusCode, 200, 'acme serves from its new worker')
  })

  t.test("a new tenant whose module's file fails is not kept: no row, schema, role or held client", async (t) => {
    // On Citus a module's files run after the host's, in transactions of their own (tenants.ts).
    const faulty = path.join(outside, 'faulty')
    await fs.mkdir(path.join(faulty, 'migrations'), { recursive: true })
    await fs.writeFile(path.join(faulty, 'module.config.ts'), "export default { id: 'faulty', name: 'Faulty', version: '1.0.0', api: '1.x', permissions: [] }\n")
    await fs.writeFile(path.join(faulty, 'plugin.ts'), "export const permissions = []\nexport default { meta: { id: 'faulty', name: 'Faulty', version: '1.0.0', api: '1.x' }, register() {} }\n")
    await fs.writeFile(path.join(faulty, 'migrations/001_half.sql'), 'CREATE TABLE half_made (id int PRIMARY KEY);\nSELECT 1 / 0;\n')
    const other = await startTestHost({ database, env: { PLINTH_MODULE_DIRS: outside } })
    t.teardown(other.close)
    await t.rejects(other.host.tenants.create({ code: 'doomed', name: 'Doomed' }), { message: /migration faulty\/001_half\.sql failed: division by zero/ })
    const left = await sqlOn<{ tenants: number; schemas: number; roles: number }>(
      database.env.DATABASE_URL!,
      `SELECT (SELECT count(*)::int FROM public.sys_tenant WHERE code = 'doomed') AS tenants,
              (SELECT count(*)::int FROM pg_namespace WHERE nspname = 't_doomed') AS schemas,
              (SELECT count(*)::int FROM pg_roles WHERE rolname LIKE '%\\_t\\_doomed') AS roles`,
    )
    t.same(left, [{ tenants: 0, schemas: 0, roles: 0 }], 'the tenant was dropped whole')
    t.equal(other.host.tenantClientPool.totalCount - other.host.tenantClientPool.idleCount, 0, 'no client is held')
    await fs.rm(faulty, { recursive: true, force: true })
  })

  t.test('tenant move refuses a node that is not a worker, and says which are', async (t) => {
    const res = await plinth(['tenant', 'move', 'beta', '--to', '127.0.0.1:1'], database.env)
    t.equal(res.code, 1)
    t.match(res.stderr, /127\.0\.0\.1:1 is not a worker of this cluster; workers: \S+:\d+, \S+:\d+\./)
  })
}

async function sqlOn<R extends pg.QueryResultRow>(url: string, text: string, values: unknown[] = []) {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return (await client.query<R>(text, values)).rows
  } finally {
    await client.end()
  }
}
