// `plinth doctor` as an operator runs it, against a database and a running host: the seed's
// checklist passes on a healthy deployment, and each thing it checks, broken, is named with what
// to do, and exits 1.
import t from 'tap'
import { createTestDatabase } from '../src/testing/database.ts'
import { TEST_ADMIN_TOKEN } from '../src/testing/host.ts'
import { plinth, startServer } from './helpers/process.ts'

t.test('a healthy deployment passes; a broken one is told what to fix', async (t) => {
  const database = await createTestDatabase()
  t.teardown(database.drop)
  const env = { ...database.env, PLINTH_ADMIN_TOKEN: TEST_ADMIN_TOKEN }
  t.equal((await plinth(['tenant', 'create', 'acme', '--name', 'Acme'], env)).code, 0)
  const server = await startServer(env)
  t.teardown(() => server.child.kill('SIGKILL'))

  const healthy = await plinth(['doctor', '--url', server.url, '--json'], env)
  t.equal(healthy.code, 0, healthy.stdout + healthy.stderr)
  const checks = JSON.parse(healthy.stdout)
  t.same(checks.filter((c: any) => c.result === 'fail'), [])
  for (const wanted of [/platform tables/, /tenant schema\(s\) with their RBAC tables and role/, /no tenant_id columns/, /module\(s\) load, api 1\.x/, /every tenant migration applied/, /change feed is live/, /module \/health route\(s\) open/, /: 403 without the permission, 200 once granted/]) {
    t.ok(checks.some((c: any) => c.result === 'ok' && wanted.test(c.check)), `passes: ${wanted}`)
  }
  t.ok(
    checks.some((c: any) => c.result === 'warn' && c.check === 'the database login role is a superuser'),
    'the test server logs in as a superuser: a warning that says so (not "is not a superuser")',
  )
  const tenants = JSON.parse((await plinth(['tenant', 'list', '--json'], env)).stdout)
  t.same(tenants.map((x: any) => x.code), ['acme'], 'the temporary tenant it checked permissions in is gone')

  // Broken on purpose: a grant of nothing, a tenant_id column, no admin token.
  t.equal((await plinth(['role', 'create', 'odd', '--tenant', 'acme'], env)).code, 0)
  t.equal((await plinth(['role', 'grant', 'odd', 'nosuchmodule.things.read', '--tenant', 'acme'], env)).code, 0)
  const sql = database.mode === 'postgres' ? await import('pg') : undefined
  if (sql) {
    const client = new sql.default.Client({ connectionString: database.env.DATABASE_URL })
    await client.connect()
    await client.query('ALTER TABLE t_acme.items ADD COLUMN tenant_id uuid')
    await client.end()
  }
  const broken = await plinth(['doctor'], { ...database.env, PLINTH_ADMIN_TOKEN: '' })
  t.equal(broken.code, 1, 'a failed check fails the command')
  t.match(broken.stdout, /✗ PLINTH_ADMIN_TOKEN is set: unset: the admin API refuses every call\n    → set it/)
  t.match(broken.stdout, /! every grant|! grants name declared permissions: acme\/odd: nosuchmodule\.things\.read/)
  if (sql) t.match(broken.stdout, /✗ no tenant_id columns in tenant schemas: acme: items/)
  t.match(broken.stdout, /! a running host .*not checked\n    → run `plinth doctor --url/)
  t.match(broken.stdout, /\d+ failed, \d+ warning\(s\), \d+ ok\n$/)
})

t.test('a tenant role whose database is gone: doctor names it, `plinth orphan-roles --drop` removes it', { skip: !process.env.DATABASE_URL && 'roles belong to a PostgreSQL server; the embedded database is its own' }, async (t) => {
  const pg = (await import('pg')).default
  const home = await createTestDatabase()
  t.teardown(home.drop)
  const doomed = await createTestDatabase()
  t.teardown(doomed.drop)
  t.equal((await plinth(['tenant', 'create', 'acme', '--name', 'Acme'], doomed.env)).code, 0)
  const server = new pg.Client({ connectionString: process.env.DATABASE_URL })
  await server.connect()
  t.teardown(() => server.end())
  const doomedName = new URL(doomed.env.DATABASE_URL!).pathname.slice(1)
  const { rows } = await server.query(`SELECT rolname FROM pg_roles r JOIN pg_shdescription d ON d.objoid = r.oid WHERE d.description = $1`, [`plinth tenant role; database ${doomedName}`])
  t.equal(rows.length, 1, "the tenant's role names its database")
  const role = rows[0].rolname
  // Retired the wrong way: the database dropped, its roles left behind.
  await server.query(`DROP DATABASE ${doomedName} WITH (FORCE)`)

  const listed = await plinth(['orphan-roles', '--json'], home.env)
  t.equal(listed.code, 0)
  t.same(JSON.parse(listed.stdout).roles.filter((o: any) => o.role === role), [{ role, database: doomedName }])
  const doctor = JSON.parse((await plinth(['doctor', '--json'], home.env)).stdout)
  t.ok(doctor.some((c: any) => c.result === 'warn' && /outlives its database/.test(c.check) && c.detail.includes(role)), 'doctor warns, naming it')
  t.equal((await plinth(['orphan-roles', '--drop'], home.env)).code, 0)
  t.same((await server.query(`SELECT 1 FROM pg_roles WHERE rolname = $1`, [role])).rows, [], 'the role is gone')
  const audit = JSON.parse((await plinth(['audit', 'list', '--action', 'tenant-role', '--json'], home.env)).stdout).events
  t.match(audit.filter((e: any) => e.target === role), [{ action: 'tenant-role.dropped', actorKind: 'cli', changes: { database: doomedName } }], 'audited where it was dropped from')
  t.match((await plinth(['orphan-roles'], home.env)).stdout, /no tenant role outlives its database/)
})
