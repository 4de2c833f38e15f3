// `plinth` as an operator runs it: a real process, on the same database as the host, whether the
// host runs or not. A change it makes reaches a running host's caches within a second.
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import pino from 'pino'
import t from 'tap'
import { PROJECT_ROOT } from '../src/app/paths.ts'
import { openDatabase } from '../src/platform/db/database.ts'
import { readMigrations } from '../src/tenancy/migration-files.ts'
import { migratePublic } from '../src/tenancy/migrations.ts'
import { createTestDatabase } from '../src/testing/database.ts'
import { plinth, startServer } from './helpers/process.ts'
import { postgresPassOnly } from './helpers/passes.ts'

t.test('tenant commands with no host running', async (t) => {
  const database = await createTestDatabase()
  t.teardown(database.drop)
  const env = database.env

  const created = await plinth(['tenant', 'create', 'acme', '--name', 'Acme Corp', '--domain', 'acme.example.com'], env)
  t.equal(created.code, 0, created.stderr)
  t.match(created.stdout, 'created tenant acme (schema t_acme, active)')

  const duplicate = await plinth(['tenant', 'create', 'acme', '--name', 'Again'], env)
  t.equal(duplicate.code, 1)
  t.match(duplicate.stderr, 'plinth: A tenant with this code already exists.')

  const invalid = await plinth(['tenant', 'create', 'Not_Valid', '--name', 'X'], env)
  t.equal(invalid.code, 1)
  t.match(invalid.stderr, /code: must be 2 to 40 characters/)

  const usage = await plinth(['tenant', 'frobnicate'], env)
  t.equal(usage.code, 2)
  t.match(usage.stdout, /Usage: plinth/)

  const list = await plinth(['tenant', 'list', '--json'], env)
  t.equal(list.code, 0)
  t.match(JSON.parse(list.stdout), [{ code: 'acme', name: 'Acme Corp', domain: 'acme.example.com', status: 'active' }])

  const suspended = await plinth(['tenant', 'suspend', 'acme'], env)
  t.match(suspended.stdout, 'suspended tenant acme')
  const shown = await plinth(['tenant', 'show', 'acme'], env)
  t.match(shown.stdout, /acme\s+Acme Corp\s+suspended\s+acme\.example\.com\s+t_acme/)

  const move = await plinth(['tenant', 'move', 'acme', '--to', '127.0.0.1:9701'], env)
  t.equal(move.code, 1, 'a tenant moves between Citus workers only')
  t.match(move.stderr, 'plinth: Tenants move between the workers of a Citus cluster; this database is one PostgreSQL')
  const nowhere = await plinth(['tenant', 'move', 'acme'], env)
  t.equal(nowhere.code, 2)
  t.match(nowhere.stderr + nowhere.stdout, 'tenant move needs --to <host:port>')

  const unconfirmed = await plinth(['tenant', 'drop', 'acme'], env)
  t.equal(unconfirmed.code, 1)
  t.match(unconfirmed.stderr, /confirm by repeating its code/)
  const dropped = await plinth(['tenant', 'drop', 'acme', '--confirm', 'acme'], env)
  t.equal(dropped.code, 0)
  const empty = await plinth(['tenant', 'list'], env)
  t.equal(empty.stdout, 'no tenants\n')

  const migrate = await plinth(['migrate', '--json'], env)
  t.equal(migrate.code, 0)
  t.same(JSON.parse(migrate.stdout), { publicApplied: [], tenants: [] }, 'nothing to apply, for no tenant')
})

t.test('with a host running, its caches follow what the CLI does within a second', async (t) => {
  const database = await createTestDatabase()
  t.teardown(database.drop)
  const server = await startServer(database.env)
  t.teardown(async () => {
    server.child.kill('SIGTERM')
    await server.exit
  })
  const status = async () => (await fetch(`${server.url}/hold?ms=1`, { headers: { 'x-tenant': 'beta' } })).status
  const within = async (ms: number, expected: number) => {
    const deadline = Date.now() + ms
    for (;;) {
      const got = await status()
      if (got === expected || Date.now() > deadline) return got
      await new Promise((r) => setTimeout(r, 50))
    }
  }
  t.equal(await status(), 404, 'unknown before the CLI creates it')

  const created = await plinth(['tenant', 'create', 'beta', '--name', 'Beta'], database.env)
  t.equal(created.code, 0, created.stderr)
  t.equal(await within(1000, 200), 200, 'served once created')

  t.equal((await plinth(['tenant', 'suspend', 'beta'], database.env)).code, 0)
  t.equal(await within(1000, 403), 403, 'refused once suspended')

  t.equal((await plinth(['tenant', 'resume', 'beta'], database.env)).code, 0)
  t.equal(await within(1000, 200), 200, 'served again once resumed')
})

// A dozen CLI processes, each opening the embedded database anew when there is no DATABASE_URL:
// on the PostgreSQL pass only, to keep CI in its time. What it checks does not depend on the database.
t.test('only plinth migrate migrates: reads and writes that touch no module import no module code, writes refuse a database a migration behind', postgresPassOnly, async (t) => {
  const database = await createTestDatabase()
  t.teardown(database.drop)
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'plinth-throws-'))
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }))
  await fs.mkdir(path.join(dir, 'throws'))
  await fs.writeFile(path.join(dir, 'throws/module.config.ts'), "export default { id: 'throws', name: 'T', version: '1.0.0', api: '1.x', permissions: ['throws.things.read'] }\n")
  // Importing its code leaves a mark: what imports it, and what does not, is seen from outside.
  const imported = path.join(dir, 'imported')
  await fs.writeFile(path.join(dir, 'throws/plugin.ts'), `import fs from 'node:fs'\nfs.writeFileSync(${JSON.stringify(imported)}, 'yes')\nthrow new Error('thrown as the module is imported')\n`)
  const wasImported = async () => {
    const seen = await fs.stat(imported).then(() => true, () => false)
    await fs.rm(imported, { force: true })
    return seen
  }
  const env = { ...database.env, PLINTH_MODULE_DIRS: dir }

  // A brand-new database (a first command on a new machine): it holds nothing yet, and says so.
  const fresh = await plinth(['tenant', 'list'], env)
  t.equal(fresh.code, 0, fresh.stderr)
  t.equal(fresh.stdout, 'no tenants\n', 'tenant list on a brand-new database: no tenants, not "run plinth migrate first"')
  const noTenant = await plinth(['key', 'list', '--tenant', 'acme'], env)
  t.equal(noTenant.code, 1)
  t.match(noTenant.stderr, 'No tenant has the code "acme"')

  // The database as the plinth before this one left it: every public migration but the newest.
  const files = await readMigrations(path.join(PROJECT_ROOT, 'migrations/public'))
  const newest = files.at(-1)!.name
  const db = await openDatabase({ databaseUrl: database.env.DATABASE_URL, dataDir: database.env.PLINTH_DATA_DIR, poolMax: 1, acquireTimeoutMs: 5000, log: pino({ level: 'silent' }) })
  await migratePublic(db.pool, files.slice(0, -1))
  await db.close()
  for (const args of [['tenant', 'list'], ['module', 'list'], ['tenant', 'create', 'acme', '--name', 'Acme'], ['doctor']]) {
    const refused = await plinth(args, env)
    t.equal(refused.code, 1, `plinth ${args.join(' ')} refuses`)
    t.equal(refused.stderr, `plinth: 1 public migration(s) pending (${newest}): run \`plinth migrate\` first\n`)
  }
  const ledger = await openDatabase({ databaseUrl: database.env.DATABASE_URL, dataDir: database.env.PLINTH_DATA_DIR, poolMax: 1, acquireTimeoutMs: 5000, log: pino({ level: 'silent' }) })
  const { rows } = await ledger.pool.query('SELECT count(*)::int AS n FROM public.sys_migration')
  await ledger.close()
  t.equal(rows[0].n, files.length - 1, 'and nothing was applied')
  t.notOk(await wasImported(), 'a refused command imports no module code either')

  const migrate = await plinth(['migrate'], env)
  t.equal(migrate.code, 0, migrate.stderr)
  t.match(migrate.stdout, `public: applied ${newest}`)
  t.ok(await wasImported(), 'migrate imports the modules')
  t.equal((await plinth(['tenant', 'create', 'acme', '--name', 'Acme'], env)).code, 0)
  t.ok(await wasImported(), 'so does tenant create: it gives the new tenant its default modules')
  for (const args of [
    ['key', 'create', '--tenant', 'acme', '--name', 'ci'],
    ['role', 'create', 'viewer', '--tenant', 'acme'],
    ['tenant', 'suspend', 'acme'],
    ['tenant', 'resume', 'acme'],
  ]) {
    const done = await plinth(args, env)
    t.equal(done.code, 0, `plinth ${args.join(' ')} ${done.stderr}`)
    t.notOk(await wasImported(), `plinth ${args.join(' ')} imports no module code`)
  }
  const list = await plinth(['tenant', 'list'], env)
  t.equal(list.code, 0, 'a module that throws on import stops no read-only command')
  t.match(list.stdout, /^acme\s+Acme\s+active/m)
  t.notMatch(list.stderr, 'thrown as the module is imported', 'its code was never imported')
  const modules = JSON.parse((await plinth(['module', 'list', '--json'], env)).stdout)
  t.match(modules.find((m: any) => m.id === 'throws'), { status: 'found' }, 'module list reads its manifest only')
  const roles = JSON.parse((await plinth(['role', 'list', '--tenant', 'acme', '--json'], env)).stdout)
  t.ok(roles.some((r: any) => r.name === 'admin'), 'role list reads the tenant without any module code')
  t.notOk(await wasImported(), 'no read-only command imported it')
})

t.test('a command opens only what it uses: the CLI writes without the JWT key only serving needs; doctor and the server read it', postgresPassOnly, async (t) => {
  const database = await createTestDatabase()
  t.teardown(database.drop)
  const missing = path.join(os.tmpdir(), `plinth-no-such-key-${process.pid}.pem`)
  const env = { ...database.env, PLINTH_JWT_PUBLIC_KEY_FILE: missing }

  const created = await plinth(['tenant', 'create', 'acme', '--name', 'Acme'], env)
  t.equal(created.code, 0, created.stderr)
  const enabled = await plinth(['module', 'enable', 'inventory', '--tenant', 'acme'], env)
  t.equal(enabled.code, 0, enabled.stderr)
  const key = await plinth(['key', 'create', '--tenant', 'acme', '--name', 'ci'], env)
  t.equal(key.code, 0, key.stderr)
  t.match(key.stdout, /plk_/, 'a key is issued: the command never needed the JWT key')

  const doctor = await plinth(['doctor'], env)
  t.equal(doctor.code, 1)
  t.match(doctor.stdout, new RegExp(`✗ the JWT verification key is readable: .*${missing.replace(/[.]/g, '\\.')}`), 'doctor reads the key as a starting host would')
  await t.rejects(startServer(env), new RegExp(`server exited \\(1\\)[^]*${missing.replace(/[.]/g, '\\.')}`), 'the server does not start without it')
})

t.test('plinth migrate exits 1 when a migration fails, and says which', postgresPassOnly, async (t) => {
  const database = await createTestDatabase()
  t.teardown(database.drop)
  const plugins = await fs.mkdtemp(path.join(os.tmpdir(), 'plinth-failing-'))
  t.teardown(() => fs.rm(plugins, { recursive: true, force: true }))
  await fs.mkdir(path.join(plugins, 'failing/migrations'), { recursive: true })
  await fs.writeFile(path.join(plugins, 'failing/module.config.ts'), "export default { id: 'failing', name: 'F', version: '1.0.0', api: '1.x', permissions: [] }\n")
  await fs.writeFile(
    path.join(plugins, 'failing/plugin.ts'),
    "export const permissions = []\nexport default { meta: { id: 'failing', name: 'F', version: '1.0.0', api: '1.x' }, register() {} }\n",
  )
  await fs.writeFile(path.join(plugins, 'failing/migrations/001_broken.sql'), 'SELECT 1 / 0;\n')
  const env = { ...database.env, PLINTH_MODULE_DIRS: plugins, PLINTH_MODULES: 'failing', PLINTH_DEFAULT_MODULES: 'none' }
  t.equal((await plinth(['tenant', 'create', 'acme', '--name', 'Acme'], env)).code, 0)
  await plinth(['module', 'enable', 'failing', '--tenant', 'acme'], env)
  const migrate = await plinth(['migrate'], env)
  t.equal(migrate.code, 1, 'a failed migration is a failed command')
  t.match(migrate.stdout + migrate.stderr, /acme.*failing.*failed/s)
  const json = await plinth(['migrate', '--json'], env)
  t.equal(json.code, 1)
  t.match(JSON.parse(json.stdout).tenants, [{ tenant: 'acme', source: 'failing', status: 'failed', error: /division by zero/ }])
})

t.test('from a fresh database to an authorized 200 in two commands: plinth demo, then the host', async (t) => {
  const database = await createTestDatabase()
  t.teardown(database.drop)
  const first = await startServer({ ...database.env })
  // Log lines are flushed every 250 ms.
  for (let i = 0; i < 20 && !/No tenant yet/.test(first.output()); i++) await new Promise((r) => setTimeout(r, 100))
  t.match(first.output(), /No tenant yet\. Next: `npx plinth demo`.*\/docs/, 'a first start says what to do next')
  const index = await (await fetch(`${first.url}/`)).json()
  t.match(index, { name: 'plinth', version: String, links: { docs: '/docs', plugins: '/api/plugins', ready: '/health/ready' } }, 'GET / is an index, not a 404')
  first.child.kill('SIGTERM')
  await first.exit

  const demo = await plinth(['demo', '--json'], database.env)
  t.equal(demo.code, 0, demo.stderr)
  const { key, curl } = JSON.parse(demo.stdout)
  t.match(curl, /^curl -H 'Authorization: Bearer plk_\w+_[\w-]+' http:\/\/127\.0\.0\.1:3000\/api\/plugins\/inventory\/items$/)
  const host = await startServer({ ...database.env })
  t.teardown(() => host.child.kill('SIGKILL'))
  const items = await fetch(`${host.url}/api/plugins/inventory/items`, { headers: { authorization: `Bearer ${key}` } })
  t.equal(items.status, 200)
  t.same((await items.json()).items.map((i: any) => i.name), ['Kettle', 'Mug', 'Teapot'])
  t.notMatch(host.output(), /No tenant yet/, 'with a tenant, no first-run line')
  const again = await plinth(['demo'], database.env)
  t.equal(again.code, 0, 'running it again gives another key for the same demo tenant')
  t.match(again.stdout, /tenant demo already there/)
})
