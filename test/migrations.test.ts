// Bootstrap and migrations: once per database, each file once, edits refused, all-or-nothing
// tenant creation, and a migrate with nothing to do that does not visit every tenant.
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import type pg from 'pg'
import t from 'tap'
import { PROJECT_ROOT } from '../src/app/paths.ts'
import { countDatabaseWork } from './helpers/count-database-work.ts'
import { createTestDatabase } from '../src/testing/database.ts'
import { startTestHost } from '../src/testing/host.ts'
import { baselineDifferences } from '../src/testing/baseline.ts'
import { runTs } from './helpers/process.ts'

/** A copy of the host's migrations that a test may add to or break. */
async function migrationsCopy(t: { teardown(fn: () => unknown): void }) {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'plinth-migrations-'))
  await fs.cp(path.join(PROJECT_ROOT, 'migrations'), dir, { recursive: true })
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }))
  return dir
}

async function snapshot(pool: pg.Pool) {
  const { rows: tables } = await pool.query(
    `SELECT table_schema || '.' || table_name AS name FROM information_schema.tables
      WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1`,
  )
  const { rows: ledger } = await pool.query('SELECT name, checksum, applied_at FROM public.sys_migration ORDER BY name')
  const { rows: tenantLedger } = await pool.query('SELECT tenant_id, source, name, checksum, applied_at FROM public.sys_tenant_migration ORDER BY 1, 2, 3')
  return { tables: tables.map((r) => r.name), ledger, tenantLedger }
}

/** A folder outside the project holding a module `notes` with the given migration files (path: SQL). */
async function notesModule(t: { teardown(fn: () => unknown): void }, files: Record<string, string>) {
  const modules = await fs.mkdtemp(path.join(os.tmpdir(), 'plinth-baseline-'))
  t.teardown(() => fs.rm(modules, { recursive: true, force: true }))
  const notes = path.join(modules, 'notes')
  await fs.mkdir(path.join(notes, 'migrations/baseline'), { recursive: true })
  await fs.writeFile(path.join(notes, 'module.config.ts'), "export default { id: 'notes', name: 'Notes', version: '1.0.0', api: '1.x', permissions: [] }\n")
  await fs.writeFile(path.join(notes, 'plugin.ts'), "export const permissions = []\nexport default { meta: { id: 'notes', name: 'Notes', version: '1.0.0', api: '1.x' }, register() {} }\n")
  const write = async (more: Record<string, string>) => {
    for (const [file, sql] of Object.entries(more)) await fs.writeFile(path.join(notes, 'migrations', file), sql)
  }
  await write(files)
  return { modules, write }
}

const publicMigrations = (await fs.readdir(path.join(PROJECT_ROOT, 'migrations/public'))).filter((f) => f.endsWith('.sql')).sort()

t.test('bootstrap creates everything once; a second start changes nothing', async (t) => {
  const database = await createTestDatabase()
  t.teardown(database.drop)
  const first = await startTestHost({ database })
  t.same(first.host.lastMigration!.publicApplied, publicMigrations)
  const acme = await first.createTenant('acme')
  t.equal(acme.schema, 't_acme')
  const before = await snapshot(first.host.pool)
  t.ok(before.tables.includes('public.sys_tenant'))
  t.ok(before.tables.includes('t_acme.plinth_role'), 'the tenant schema has its RBAC tables')
  const { rows: admin } = await first.host.pool.query(
    `SELECT g.permission FROM t_acme.plinth_role r JOIN t_acme.plinth_role_grant g ON g.role_id = r.id WHERE r.name = 'admin'`,
  )
  t.same(admin, [{ permission: '*' }], 'every tenant starts with an admin role')
  const { rows: tenantIdColumns } = await first.host.pool.query(
    `SELECT table_name FROM information_schema.columns WHERE table_schema = 't_acme' AND column_name = 'tenant_id'`,
  )
  t.same(tenantIdColumns, [], 'no tenant_id column inside a tenant schema')
  await first.close()

  const second = await startTestHost({ database })
  t.teardown(second.close)
  t.same(second.host.lastMigration, { publicApplied: [], tenants: [] })
  t.same(await snapshot(second.host.pool), before)
})

t.test("a tenant whose host migrations failed gets none of its modules' new files: they are reported skipped", async (t) => {
  const dir = await migrationsCopy(t)
  const modules = await fs.mkdtemp(path.join(os.tmpdir(), 'plinth-skipped-'))
  t.teardown(() => fs.rm(modules, { recursive: true, force: true }))
  await fs.mkdir(path.join(modules, 'notes/migrations'), { recursive: true })
  await fs.writeFile(path.join(modules, 'notes/module.config.ts'), "export default { id: 'notes', name: 'Notes', version: '1.0.0', api: '1.x', permissions: [] }\n")
  await fs.writeFile(path.join(modules, 'notes/plugin.ts'), "export const permissions = []\nexport default { meta: { id: 'notes', name: 'Notes', version: '1.0.0', api: '1.x' }, register() {} }\n")
  await fs.writeFile(path.join(modules, 'notes/migrations/001_notes.sql'), 'CREATE TABLE notes (id int);\n')
  const env = { PLINTH_MODULE_DIRS: modules, PLINTH_MODULES: 'notes' }
  const database = await createTestDatabase()
  t.teardown(database.drop)
  const first = await startTestHost({ database, migrationsDir: dir, env })
  await first.createTenant('acme')
  await first.close()

  // A host file that fails for acme, and a new module file that builds on the host's tables.
  await fs.writeFile(path.join(dir, 'tenant/900_broken.sql'), 'SELECT 1 / 0;\n')
  await fs.writeFile(path.join(modules, 'notes/migrations/002_more.sql'), 'CREATE TABLE more_notes (id int);\n')
  const second = await startTestHost({ database, migrationsDir: dir, env })
  t.teardown(second.close)
  t.match(second.host.lastMigration!.tenants, [
    { tenant: 'acme', source: 'host', status: 'failed', error: /division by zero/ },
    { tenant: 'acme', source: 'notes', status: 'skipped', applied: [], error: 'the host migrations of this tenant failed' },
  ])
  const { rows } = await second.host.pool.query(`SELECT to_regclass('t_acme.more_notes') AS t`)
  t.equal(rows[0].t, null, 'the skipped file did not run')
})

t.test('an applied migration that was edited is refused with a clear error', async (t) => {
  const dir = await migrationsCopy(t)
  const database = await createTestDatabase()
  t.teardown(database.drop)
  const first = await startTestHost({ database, migrationsDir: dir })
  await first.createTenant('acme')
  await first.close()

  await fs.appendFile(path.join(dir, 'tenant/001_rbac.sql'), '\n-- edited\n')
  const tenantEdited = await startTestHost({ database, migrationsDir: dir })
  const [result] = tenantEdited.host.lastMigration!.tenants
  t.match(result, { tenant: 'acme', source: 'host', status: 'failed', error: /^migration host\/001_rbac\.sql was edited after it was applied/ })
  await tenantEdited.close()

  await fs.appendFile(path.join(dir, 'public/001_platform.sql'), '\n-- edited\n')
  await t.rejects(startTestHost({ database, migrationsDir: dir }), {
    code: 'MIGRATION_EDITED',
    message: /public\/001_platform\.sql was edited after it was applied/,
  })
})

t.test('a new tenant migration reaches every existing tenant; each file runs in its own transaction', async (t) => {
  const dir = await migrationsCopy(t)
  const database = await createTestDatabase()
  t.teardown(database.drop)
  const first = await startTestHost({ database, migrationsDir: dir })
  await first.createTenant('acme')
  await first.createTenant('beta')
  await first.close()

  await fs.writeFile(path.join(dir, 'tenant/002_audit.sql'), 'CREATE TABLE audit (id serial PRIMARY KEY, what text NOT NULL);\n')
  // Written out of order: a folder lists files in the order it likes (creation, hash), not by name.
  for (const n of [3, 7, 1, 9, 5, 2, 8, 4, 6]) await fs.writeFile(path.join(dir, `tenant/002_step${n}.sql`), `INSERT INTO audit (what) VALUES ('${n}');\n`)
  // Fails halfway through: its first statement must not survive.
  await fs.writeFile(path.join(dir, 'tenant/003_broken.sql'), 'CREATE TABLE half_done (id int);\nSELECT * FROM no_such_table;\n')
  const second = await startTestHost({ database, migrationsDir: dir })
  t.teardown(second.close)
  const report = second.host.lastMigration!.tenants
  const steps = [1, 2, 3, 4, 5, 6, 7, 8, 9].map((n) => `002_step${n}.sql`)
  t.same(
    report.map((r) => [r.tenant, r.status, r.applied]),
    [
      ['acme', 'failed', ['002_audit.sql', ...steps]],
      ['beta', 'failed', ['002_audit.sql', ...steps]],
    ],
    'in the order of their names, whatever order the folder lists them in',
  )
  const { rows: order } = await second.host.pool.query('SELECT what FROM t_acme.audit ORDER BY id')
  t.same(order.map((r) => r.what), ['1', '2', '3', '4', '5', '6', '7', '8', '9'])
  t.match(report[0].error, /003_broken\.sql failed/)
  const { rows } = await second.host.pool.query(
    `SELECT table_schema, table_name FROM information_schema.tables WHERE table_name IN ('audit', 'half_done') ORDER BY 1, 2`,
  )
  t.same(rows.map((r) => `${r.table_schema}.${r.table_name}`), ['t_acme.audit', 't_beta.audit'], 'no half-applied file')
})

t.test('creating a tenant is all or nothing', async (t) => {
  const dir = await migrationsCopy(t)
  await fs.writeFile(path.join(dir, 'tenant/002_broken.sql'), 'CREATE TABLE fine (id int);\nSELECT 1/0;\n')
  const th = await startTestHost({ migrationsDir: dir })
  t.teardown(th.close)
  await t.rejects(th.createTenant('acme'), { name: 'MigrationError', code: 'MIGRATION_FAILED', message: /002_broken\.sql failed/, cause: { code: '22012' } })
  const { rows: tenants } = await th.host.pool.query('SELECT code FROM public.sys_tenant')
  const { rows: schemas } = await th.host.pool.query(`SELECT nspname FROM pg_namespace WHERE nspname = 't_acme'`)
  const { rows: ledger } = await th.host.pool.query('SELECT * FROM public.sys_tenant_migration')
  t.same([tenants, schemas, ledger], [[], [], []], 'no row, no schema, no ledger entry')
  t.equal(th.host.registry.byCode('acme'), undefined)
})

t.test('tenant create, duplicate, drop', async (t) => {
  const th = await startTestHost()
  t.teardown(th.close)
  await th.createTenant('acme-eu', { domain: 'acme.example.com' })
  await t.rejects(th.createTenant('acme-eu'), { status: 409, code: 'TENANT_EXISTS' })
  await t.rejects(th.createTenant('other', { domain: 'acme.example.com' }), { status: 409, code: 'TENANT_EXISTS', message: /domain/ })
  await t.rejects(th.host.tenants.create({ code: 'Bad_Code', name: '' }), { status: 400, code: 'VALIDATION_FAILED' })
  await t.rejects(th.host.tenants.drop('acme-eu', 'wrong'), { code: 'CONFIRMATION_REQUIRED' })
  const dropped = await th.host.tenants.drop('acme-eu', 'acme-eu')
  t.equal(dropped.schema, 't_acme_eu')
  const { rows } = await th.host.pool.query(`SELECT nspname FROM pg_namespace WHERE nspname = 't_acme_eu'`)
  t.same(rows, [], 'the schema is gone')
  t.equal(th.host.registry.byCode('acme-eu'), undefined, 'and so is the cached tenant')
  await t.rejects(th.host.tenants.drop('acme-eu', 'acme-eu'), { status: 404, code: 'TENANT_NOT_FOUND' })
})

t.test('a migrate with nothing to do costs the same few queries for 2 tenants or 30', async (t) => {
  const th = await startTestHost()
  t.teardown(th.close)
  // The change feed polls on the embedded database; its queries are not the migrate's.
  await th.host.changes.stop()
  const countWork = () => countDatabaseWork(() => th.host.migrate())
  for (const code of ['t1', 't2']) await th.createTenant(code)
  const withTwo = await countWork()
  for (let i = 3; i <= 30; i++) await th.createTenant(`t${i}`)
  const withThirty = await countWork()
  t.same(withThirty, withTwo, `${withTwo.statements} statements in ${withTwo.roundTrips} round trips either way`)
  t.ok(withTwo.roundTrips <= 7, `a handful of round trips (${withTwo.roundTrips})`)
})

t.test('a new file reaches a tenant in two round trips: the lock with the ledger read, then the file with its ledger row and COMMIT', async (t) => {
  const dir = await migrationsCopy(t)
  const th = await startTestHost({ migrationsDir: dir })
  t.teardown(th.close)
  await th.host.changes.stop()
  await th.createTenant('acme')
  const nothingPending = await countDatabaseWork(() => th.host.migrate())
  await fs.writeFile(path.join(dir, 'tenant/003_note.sql'), 'CREATE TABLE note (id int);\n-- a file may end in a comment')
  const onePending = await countDatabaseWork(() => th.host.migrate())
  t.same(th.host.lastMigration!.tenants.map((r) => [r.tenant, r.status, r.applied]), [['acme', 'ok', ['003_note.sql']]])
  t.equal(onePending.roundTrips - nothingPending.roundTrips, 2, `${onePending.roundTrips} round trips against ${nothingPending.roundTrips} with nothing to do`)
  const { rows } = await th.host.pool.query(`SELECT count(*)::int AS n FROM public.sys_tenant_migration WHERE name = '003_note.sql'`)
  t.equal(rows[0].n, 1, 'recorded once')
})

t.test('two hosts starting at once on one database apply each file exactly once', async (t) => {
  const dir = await migrationsCopy(t)
  // Slow enough that both processes are inside bootstrap together; counts how often it ran.
  await fs.writeFile(
    path.join(dir, 'public/900_counted.sql'),
    `CREATE TABLE public.applied_count (n int);\nINSERT INTO public.applied_count VALUES (1);\nSELECT pg_sleep(0.3);\n`,
  )
  const database = await createTestDatabase()
  t.teardown(database.drop)
  const env = { ...database.env, TEST_MIGRATIONS_DIR: dir, HOLD_MS: '3000' }
  const [a, b] = await Promise.all([runTs('test/fixtures/open-host.ts', [], env), runTs('test/fixtures/open-host.ts', [], env)])
  t.equal(a.code, 0, a.stderr)
  t.equal(b.code, 0, b.stderr)
  const applied = [a, b].map((r) => JSON.parse(r.stdout).publicApplied)
  t.same(applied.flat().sort(), [...publicMigrations, '900_counted.sql'], 'each file applied by exactly one of them')
  const th = await startTestHost({ database, migrationsDir: dir })
  t.teardown(th.close)
  const { rows } = await th.host.pool.query('SELECT count(*)::int AS n FROM public.applied_count')
  t.equal(rows[0].n, 1)
})

t.test('two hosts migrating one database at once apply each new file once, and each says what it applied', { skip: !process.env.DATABASE_URL && 'the embedded database serves one host at a time' }, async (t) => {
  const dir = await migrationsCopy(t)
  const database = await createTestDatabase()
  t.teardown(database.drop)
  const a = await startTestHost({ database, migrationsDir: dir })
  t.teardown(a.close)
  const b = await startTestHost({ database, migrationsDir: dir })
  t.teardown(b.close)
  await a.createTenant('acme')

  // Slow files, so that both migrations are inside them together; each counts its runs.
  await fs.writeFile(path.join(dir, 'public/900_counted.sql'), 'CREATE TABLE public.public_runs (n int);\nINSERT INTO public.public_runs VALUES (1);\nSELECT pg_sleep(0.3);\n')
  await fs.writeFile(path.join(dir, 'tenant/900_counted.sql'), 'CREATE TABLE tenant_runs (n int);\nINSERT INTO tenant_runs VALUES (1);\nSELECT pg_sleep(0.3);\n')
  const reports = await Promise.all([a.host.migrate(), b.host.migrate()])
  t.same(reports.flatMap((r) => r.publicApplied), ['900_counted.sql'], 'the public file applied by one of them')
  t.same(
    reports.flatMap((r) => r.tenants.map((x) => [x.tenant, x.status, x.applied])).sort((x, y) => y[2].length - x[2].length),
    [
      ['acme', 'ok', ['900_counted.sql']],
      ['acme', 'ok', []],
    ],
    'the tenant file applied by one; the other found it done',
  )
  const { rows } = await a.host.pool.query('SELECT (SELECT count(*)::int FROM public.public_runs) AS public, (SELECT count(*)::int FROM t_acme.tenant_runs) AS tenant')
  t.same(rows[0], { public: 1, tenant: 1 })
  if (process.env.DATABASE_URL) {
    const { rows: open } = await a.host.pool.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%'`)
    t.equal(open[0].n, 0, 'the host that found the file done ended its transaction (and its lock) before giving its client back')
  }
})

t.test('a public migration that fails stops the start, names its file and leaves nothing of itself', async (t) => {
  const dir = await migrationsCopy(t)
  await fs.writeFile(path.join(dir, 'public/900_broken.sql'), 'CREATE TABLE public.half_done (id int);\nSELECT 1 / 0;\n')
  // Not migrations: a folder's notes and editor leftovers are never run.
  await fs.writeFile(path.join(dir, 'public/README.md'), '# public migrations\nNot SQL at all.\n')
  await fs.writeFile(path.join(dir, 'tenant/001_rbac.sql~'), 'SELECT no_such_function();\n')
  const database = await createTestDatabase()
  t.teardown(database.drop)
  await t.rejects(startTestHost({ database, migrationsDir: dir }), {
    name: 'MigrationError',
    code: 'MIGRATION_FAILED',
    file: '900_broken.sql',
    message: /900_broken\.sql failed: division by zero/,
    cause: { code: '22012' },
  })

  await fs.rm(path.join(dir, 'public/900_broken.sql'))
  const th = await startTestHost({ database, migrationsDir: dir })
  t.teardown(th.close)
  t.same(th.host.lastMigration!.publicApplied, [], 'the files before it were applied by the first start')
  const { rows } = await th.host.pool.query(`SELECT to_regclass('public.half_done') AS half, (SELECT count(*)::int FROM public.sys_migration WHERE name = '900_broken.sql') AS recorded`)
  t.same(rows[0], { half: null, recorded: 0 }, 'no half-applied file, no ledger row')
  await th.createTenant('acme')
})

t.test("a module's migrations folder that cannot be read fails that module, not the host", async (t) => {
  const modules = await fs.mkdtemp(path.join(os.tmpdir(), 'plinth-unreadable-'))
  t.teardown(() => fs.rm(modules, { recursive: true, force: true }))
  await fs.mkdir(path.join(modules, 'notes'))
  await fs.writeFile(path.join(modules, 'notes/module.config.ts'), "export default { id: 'notes', name: 'Notes', version: '1.0.0', api: '1.x', permissions: [] }\n")
  await fs.writeFile(path.join(modules, 'notes/plugin.ts'), "export const permissions = []\nexport default { meta: { id: 'notes', name: 'Notes', version: '1.0.0', api: '1.x' }, register() {} }\n")
  await fs.writeFile(path.join(modules, 'notes/migrations'), 'a file where the folder should be\n')
  const th = await startTestHost({ env: { PLINTH_MODULE_DIRS: modules, PLINTH_MODULES: 'notes' } })
  t.teardown(th.close)
  t.match(th.host.modules, [{ id: 'notes', status: 'failed', reason: /ENOTDIR/ }])
})

t.test("a module without a migrations folder has none; a module's new file reaches its existing tenants, as the tenant's role", async (t) => {
  const modules = await fs.mkdtemp(path.join(os.tmpdir(), 'plinth-module-files-'))
  t.teardown(() => fs.rm(modules, { recursive: true, force: true }))
  for (const id of ['plain', 'notes']) {
    await fs.mkdir(path.join(modules, id))
    await fs.writeFile(path.join(modules, id, 'module.config.ts'), `export default { id: '${id}', name: '${id}', version: '1.0.0', api: '1.x', permissions: [] }\n`)
    await fs.writeFile(path.join(modules, id, 'plugin.ts'), `export const permissions = []\nexport default { meta: { id: '${id}', name: '${id}', version: '1.0.0', api: '1.x' }, register() {} }\n`)
  }
  await fs.mkdir(path.join(modules, 'notes/migrations'))
  await fs.writeFile(path.join(modules, 'notes/migrations/001_notes.sql'), 'CREATE TABLE notes (id int);\n')
  const env = { PLINTH_MODULE_DIRS: modules, PLINTH_MODULES: 'plain,notes' }
  const database = await createTestDatabase()
  t.teardown(database.drop)
  const first = await startTestHost({ database, env })
  t.same(Object.fromEntries(first.host.modules.map((m) => [m.id, [m.status, m.migrations.map((f) => f.name)]])), {
    plain: ['loaded', []],
    notes: ['loaded', ['001_notes.sql']],
  })
  const acme = await first.createTenant('acme')
  await first.close()

  await fs.writeFile(path.join(modules, 'notes/migrations/002_more.sql'), 'CREATE TABLE more_notes (id int);\n')
  const second = await startTestHost({ database, env })
  t.teardown(second.close)
  t.match(second.host.lastMigration!.tenants, [{ tenant: 'acme', source: 'notes', status: 'ok', applied: ['002_more.sql'] }])
  const { rows } = await second.host.pool.query(`SELECT tableowner FROM pg_tables WHERE schemaname = 't_acme' AND tablename = 'more_notes'`)
  t.same(rows, [{ tableowner: acme.role }], "the tenant's role owns what its module's file made")
})

t.test("a module's baseline: a tenant new to the module gets it in place of the files it stands for, one that has them goes on file by file, and the ledger records the files either way", async (t) => {
  const { modules, write } = await notesModule(t, {
    '001_notes.sql': 'CREATE TABLE notes (id int);\n',
    '002_body.sql': 'ALTER TABLE notes ADD COLUMN body text;\n',
  })
  const env = { PLINTH_MODULE_DIRS: modules, PLINTH_MODULES: 'notes' }
  const database = await createTestDatabase()
  t.teardown(database.drop)
  const first = await startTestHost({ database, env })
  await first.createTenant('old')
  await first.close()

  await write({
    'baseline/002_body.sql': "CREATE TABLE notes (id int, body text);\nCOMMENT ON TABLE notes IS 'made by the baseline';\n",
    '003_more.sql': 'CREATE TABLE more_notes (id int);\n',
  })
  const th = await startTestHost({ database, env: { ...env, PLINTH_DEFAULT_MODULES: 'notes' } })
  t.teardown(th.close)
  t.match(th.host.lastMigration!.tenants, [{ tenant: 'old', source: 'notes', status: 'ok', applied: ['003_more.sql'] }], 'a tenant that has the files gets only the new one')

  await th.createTenant('fresh')
  const bulk = await th.host.tenants.createMany([{ code: 'bulk', name: 'Bulk' }])
  t.same(bulk.failed, [])
  const madeBy = async (code: string) => {
    const { rows } = await th.host.pool.query(`SELECT obj_description($1::regclass, 'pg_class') AS comment`, [`t_${code}.notes`])
    return rows[0].comment
  }
  t.equal(await madeBy('old'), null, 'the old tenant kept what its files made')
  t.equal(await madeBy('fresh'), 'made by the baseline', 'a new tenant got the baseline')
  t.equal(await madeBy('bulk'), 'made by the baseline', 'so does one created in bulk')

  const ledger = async (code: string) => {
    const { rows } = await th.host.pool.query(
      `SELECT m.name, m.checksum FROM public.sys_tenant_migration m JOIN public.sys_tenant t ON t.id = m.tenant_id
        WHERE t.code = $1 AND m.source = 'notes' ORDER BY m.name`,
      [code],
    )
    return rows
  }
  t.same(await ledger('fresh'), await ledger('old'), 'the ledger records each history file, with its own checksum, as if it had run')
  t.same((await ledger('bulk')).map((r) => r.name), ['001_notes.sql', '002_body.sql', '003_more.sql'])

  // A tenant that enables the module later is new to it too.
  await th.host.tenants.create({ code: 'solo', name: 'Solo' })
  await th.host.pool.query(`DELETE FROM public.sys_tenant_module WHERE module_id = 'notes' AND tenant_id = (SELECT id FROM public.sys_tenant WHERE code = 'solo')`)
  await th.host.pool.query(`DROP TABLE t_solo.notes, t_solo.more_notes; DELETE FROM public.sys_tenant_migration WHERE source = 'notes' AND tenant_id = (SELECT id FROM public.sys_tenant WHERE code = 'solo')`)
  const enabled = await th.host.enableModule('solo', 'notes')
  t.match(enabled, { status: 'ok', applied: ['001_notes.sql', '002_body.sql', '003_more.sql'] })
  t.equal(await madeBy('solo'), 'made by the baseline', 'a tenant enabling the module gets the baseline')
})

t.test('a baseline that names none of the files refuses its module, and says why', async (t) => {
  const { modules } = await notesModule(t, {
    '001_notes.sql': 'CREATE TABLE notes (id int);\n',
    'baseline/002_typo.sql': 'CREATE TABLE notes (id int);\n',
  })
  const th = await startTestHost({ env: { PLINTH_MODULE_DIRS: modules, PLINTH_MODULES: 'notes' } })
  t.teardown(th.close)
  t.match(th.host.modules, [{ id: 'notes', status: 'refused', reason: /baseline\/002_typo\.sql names no migration file/ }])
})

t.test("the harness finds a baseline that drifts from its history, and a baseline that fails leaves no schema behind", async (t) => {
  const { modules, write } = await notesModule(t, {
    '001_notes.sql': 'CREATE TABLE notes (id int);\n',
    '002_body.sql': 'ALTER TABLE notes ADD COLUMN body text;\n',
    'baseline/002_body.sql': 'CREATE TABLE notes (id int, body varchar(10));\n',
  })
  const th = await startTestHost({ env: { PLINTH_MODULE_DIRS: modules, PLINTH_MODULES: 'notes' } })
  t.teardown(th.close)
  const dir = path.join(modules, 'notes')
  t.same(await baselineDifferences(th.host.pool, dir), ['only the history makes: column notes.body #2 text', 'only baseline/002_body.sql makes: column notes.body #2 character varying(10)'])

  await write({ 'baseline/002_body.sql': 'CREATE TABLE notes (id int, body text);\nCREATE TABLE notes (id int);\n' })
  await t.rejects(baselineDifferences(th.host.pool, dir), { message: /relation "notes" already exists/ })
  const { rows } = await th.host.pool.query(`SELECT nspname FROM pg_namespace WHERE nspname LIKE 'plinth_history_%' OR nspname LIKE 'plinth_baseline_%'`)
  t.same(rows, [], 'both scratch schemas are dropped')
})
