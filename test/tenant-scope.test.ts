// The tenant scope, enforced by PostgreSQL: module code runs as its tenant's role and can reach
// nothing outside its schema through the host's API; a dropped tenant fails its requests cleanly;
// no tenant starves another of the pool; statements and locks are bounded in time.
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import t from 'tap'
import { PROJECT_ROOT } from '../src/host/host.ts'
import { startTestHost, TEST_ADMIN_TOKEN } from '../src/testing/host.ts'
import { createNoteTable, noteRoutes } from './helpers/notes.ts'
import { assertProblem } from './helpers/problem.ts'

const onPostgres = Boolean(process.env.DATABASE_URL)
const admin = { authorization: `Bearer ${TEST_ADMIN_TOKEN}` }

async function outside(t: { teardown(fn: () => unknown): void }, module: string) {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'plinth-scope-'))
  t.teardown(() => fs.rm(root, { recursive: true, force: true }))
  await fs.cp(path.join(PROJECT_ROOT, 'test/fixtures/stranger', module), path.join(root, module), { recursive: true })
  return root
}

t.test('a module can reach nothing outside its tenant: every escape is denied', async (t) => {
  const th = await startTestHost({ env: { PLINTH_PLUGIN_DIRS: await outside(t, 'escapee'), PLINTH_PLUGINS: 'escapee' } })
  t.teardown(th.close)
  const acme = await th.createTenant('acme')
  await th.createTenant('beta')
  await th.host.createKey('acme', 'probe')
  const attempt = async (what: string) => (await th.app.inject({ method: 'POST', url: `/api/plugins/escapee/try/${what}`, headers: { ...admin, 'x-tenant': 'acme' } })).json()

  t.same(await attempt('own-table'), { went: true }, 'its own tables: yes')
  const who = (await th.app.inject({ url: '/api/plugins/escapee/who', headers: { ...admin, 'x-tenant': 'acme' } })).json()
  t.same(who, { user: acme.role, path: 't_acme, public' }, "requests run as the tenant's role, on its schema")

  for (const what of ['api-keys', 'tenants-unqualified', 'other-tenant', 'grant-myself-admin', 'table-in-public']) {
    t.match(await attempt(what), { went: false, code: '42501', message: /permission denied/ }, `${what}: permission denied by PostgreSQL`)
  }
  for (const what of ['search-path', 'search-path-local', 'set-config-role', 'reset-role', 'set-role', 'commit', 'rollback', 'raw-client-commit', 'drizzle-transaction']) {
    t.match(await attempt(what), { went: false, name: 'RefusedStatementError', message: /^module code may not/ }, `${what}: refused by the host`)
  }
  t.match(await attempt('smuggled-commit'), { went: false, code: '42601', message: /cannot insert multiple commands/ }, 'a second statement cannot ride behind a first')

  const { rows: planted } = await th.host.pool.query(`SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'public' AND tablename = 'planted'`)
  t.equal(planted[0].n, 0)
  const { rows: grants } = await th.host.pool.query(`SELECT count(*)::int AS n FROM t_acme.plinth_principal_role WHERE principal_id = 'key:me'`)
  t.equal(grants[0].n, 0, 'no role granted')
  const { rows: owner } = await th.host.pool.query(`SELECT tableowner FROM pg_tables WHERE schemaname = 't_acme' AND tablename = 'things'`)
  t.equal(owner[0].tableowner, acme.role, "the module's table belongs to the tenant's role")
  const { rows: rbacOwner } = await th.host.pool.query(`SELECT tableowner FROM pg_tables WHERE schemaname = 't_acme' AND tablename = 'plinth_role'`)
  t.not(rbacOwner[0].tableowner, acme.role, "the host's RBAC tables do not")
})

t.test("a module migration that reaches outside its tenant's schema fails for that tenant", async (t) => {
  const root = await outside(t, 'escapee')
  await fs.writeFile(path.join(root, 'escapee/migrations/002_public.sql'), 'CREATE TABLE public.escapee_log (x int);\n')
  const th = await startTestHost({ env: { PLINTH_PLUGIN_DIRS: root, PLINTH_PLUGINS: 'escapee', PLINTH_DEFAULT_PLUGINS: 'none' } })
  t.teardown(th.close)
  await th.createTenant('acme')
  t.match(await th.host.enableModule('acme', 'escapee'), { status: 'failed', error: /002_public\.sql failed: permission denied for schema public/ })
  const { rows } = await th.host.pool.query(`SELECT to_regclass('public.escapee_log') AS t`)
  t.equal(rows[0].t, null)
})

t.test('a tenant dropped under a request in flight answers 404, never falls through to public', async (t) => {
  const th = await startTestHost()
  t.teardown(th.close)
  const acme = await th.createTenant('acme')
  await th.host.pool.query(`CREATE TABLE public.items (id uuid, name text, sku text, quantity int, created_at timestamptz, updated_at timestamptz)`)
  await th.host.pool.query(`INSERT INTO public.items VALUES (gen_random_uuid(), 'not yours', null, 1, now(), now())`)
  // Dropped by another instance; its change has not reached this one yet.
  await th.host.pool.query(`DROP SCHEMA t_acme CASCADE; DROP ROLE "${acme.role}"`)
  const res = await th.app.inject({ url: '/api/plugins/inventory/items', headers: { ...admin, 'x-tenant': 'acme' } })
  assertProblem(t, res, 404, 'TENANT_NOT_FOUND')
  t.notMatch(res.body, /not yours/)
})

t.test('when a setting sent with BEGIN fails, the write pipelined behind it fails too: nothing runs outside the tenant scope', async (t) => {
  const th = await startTestHost()
  t.teardown(th.close)
  const acme = await th.createTenant('acme')
  // The role alone is gone (its schema and tables stay): set_config('role') fails; the INSERT that
  // travelled right behind it must not run as the host's own login role.
  await th.host.pool.query(`REASSIGN OWNED BY "${acme.role}" TO CURRENT_USER; DROP OWNED BY "${acme.role}"; DROP ROLE "${acme.role}"`)
  const res = await th.app.inject({ method: 'POST', url: '/api/plugins/inventory/items', headers: { ...admin, 'x-tenant': 'acme' }, payload: { name: 'must not land' } })
  assertProblem(t, res, 404, 'TENANT_NOT_FOUND')
  const { rows } = await th.host.pool.query(`SELECT count(*)::int AS n FROM t_acme.items`)
  t.equal(rows[0].n, 0, 'no row was written')
  for (let i = 0; i < 50 && th.host.pool.totalCount !== th.host.pool.idleCount; i++) await new Promise((r) => setTimeout(r, 20))
  t.equal(th.host.pool.totalCount - th.host.pool.idleCount, 0, 'and no client is held')
})

t.test('a tenant created by the host gets its role; dropping the tenant drops it', async (t) => {
  const th = await startTestHost()
  t.teardown(th.close)
  const acme = await th.createTenant('acme')
  t.match(acme.role, /^plinth_[0-9a-f]{8}_t_acme$/)
  const role = async () => (await th.host.pool.query(`SELECT count(*)::int AS n FROM pg_roles WHERE rolname = $1 AND NOT rolcanlogin`, [acme.role])).rows[0].n
  t.equal(await role(), 1, 'a NOLOGIN role')
  await th.host.tenants.drop('acme', 'acme')
  t.equal(await role(), 0)
})

t.test('a key made a moment ago on another instance, for a tenant made there too, works on the very next request', { skip: !onPostgres && 'the embedded database serves one host at a time' }, async (t) => {
  const here = await startTestHost()
  t.teardown(here.close)
  const there = await startTestHost({ database: here.database })
  t.teardown(there.close)
  // Nothing tells this instance: what it has not seen, it must read.
  await here.host.changes.stop()
  const gamma = await there.createTenant('gamma')
  await there.host.roles.create(gamma, 'reader')
  await there.host.roles.grant(gamma, 'reader', 'inventory.items.read')
  const { key } = await there.host.createKey('gamma', 'fresh', ['reader'])
  const res = await here.app.inject({ url: '/api/plugins/inventory/items', headers: { authorization: `Bearer ${key}` } })
  t.equal(res.statusCode, 200, `the key's tenant, found without an x-tenant header (${res.body})`)
})

t.test("a route's guards run without a database connection; its handler gets one", async (t) => {
  const th = await startTestHost({ env: { PLINTH_PLUGIN_DIRS: await outside(t, 'expresscases'), PLINTH_PLUGINS: 'expresscases' } })
  t.teardown(th.close)
  await th.createTenant('acme')
  const inUse = () => th.host.pool.totalCount - th.host.pool.idleCount
  for (const [guard, path] of [['a route guard', '/slow-guard'], ['router.use() middleware', '/slow-use']]) {
    const pending = th.app.inject({ url: `/api/plugins/expresscases${path}`, headers: { ...admin, 'x-tenant': 'acme' } })
    await new Promise((r) => setTimeout(r, 150))
    t.equal(inUse(), 0, `while ${guard} waits, no pooled client is taken`)
    const res = await pending
    t.same(res.json(), { inTransaction: true }, 'the handler ran in the transaction')
    t.equal(inUse(), 0, 'and gave it back')
  }
})

t.test('no tenant starves another: one tenant holding its share of the pool leaves the rest to others', { skip: !onPostgres && 'the embedded database serves one transaction at a time' }, async (t) => {
  const th = await startTestHost({ env: { DB_POOL_MAX: '10', DB_ACQUIRE_TIMEOUT_MS: '8000' }, tenantRoutes: noteRoutes })
  t.teardown(th.close)
  for (const code of ['slow', 'fast']) await createNoteTable(th.host, (await th.createTenant(code)).id)
  const slow = Array.from({ length: 20 }, () => th.app.inject({ url: '/hold?ms=3000', headers: { 'x-tenant': 'slow' } }))
  await new Promise((r) => setTimeout(r, 200))
  t.equal(th.host.tenantPool.share!.holding((await th.host.tenants.get('slow')).id), 5, 'the slow tenant holds its share: half the pool')
  const latencies: number[] = []
  await Promise.all(
    Array.from({ length: 20 }, async () => {
      const started = Date.now()
      const res = await th.app.inject({ url: '/notes', headers: { 'x-tenant': 'fast' } })
      latencies.push(Date.now() - started)
      t.equal(res.statusCode, 200)
    }),
  )
  latencies.sort((a, b) => a - b)
  t.ok(latencies[latencies.length - 1] < 1000, `the other tenant's requests answer meanwhile (slowest ${latencies.at(-1)} ms)`)
  await Promise.all(slow)
})

t.test('DB_TENANT_POOL_MAX=0: no per-tenant bound, one tenant may hold the whole pool', { skip: !onPostgres && 'the embedded database serves one transaction at a time' }, async (t) => {
  const th = await startTestHost({ env: { DB_POOL_MAX: '4', DB_TENANT_POOL_MAX: '0', DB_ACQUIRE_TIMEOUT_MS: '8000' }, tenantRoutes: noteRoutes })
  t.teardown(th.close)
  await th.createTenant('only')
  const holders = Array.from({ length: 4 }, () => th.app.inject({ url: '/hold?ms=1000', headers: { 'x-tenant': 'only' } }))
  await new Promise((r) => setTimeout(r, 300))
  t.equal(th.host.pool.totalCount - th.host.pool.idleCount, 4, 'four requests of one tenant hold all four clients at once')
  t.same((await Promise.all(holders)).map((r) => r.statusCode), [200, 200, 200, 200])
})

t.test('statements and locks are bounded in time', { skip: !onPostgres && 'pg_sleep would stall the embedded database with the test' }, async (t) => {
  const th = await startTestHost({ env: { DB_STATEMENT_TIMEOUT_MS: '1000', DB_LOCK_TIMEOUT_MS: '200' }, tenantRoutes: noteRoutes })
  t.teardown(th.close)
  const acme = await th.createTenant('acme')
  await createNoteTable(th.host, acme.id)
  const slow = await th.app.inject({ url: '/sleep?s=2', headers: { 'x-tenant': 'acme' } })
  assertProblem(t, slow, 504, 'STATEMENT_TIMEOUT')
  const holder = await th.host.pool.connect()
  t.teardown(() => holder.release())
  await holder.query('BEGIN; LOCK TABLE t_acme.note IN ACCESS EXCLUSIVE MODE')
  const locked = await th.app.inject({ method: 'POST', url: '/notes', headers: { 'x-tenant': 'acme' }, payload: { body: 'waits' } })
  assertProblem(t, locked, 503, 'LOCK_TIMEOUT')
  t.equal(locked.headers['retry-after'], '1')
  await holder.query('ROLLBACK')
})
