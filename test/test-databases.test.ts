// The test kit's databases (src/testing/database.ts) when DATABASE_URL leads through PgBouncer in
// transaction mode, as CI's PgBouncer pass and a module author's suite behind one run them: test
// files making migrated databases at once never wait on each other for good, and the migrated
// template can be made through PgBouncer.
import { randomBytes } from 'node:crypto'
import t, { type Test } from 'tap'
import { createTestDatabase, migratedServerTemplate, withServer } from '../src/testing/database.ts'
import { pgbouncerBinary, startPgBouncer } from './helpers/pgbouncer.ts'

const serverUrl = process.env.DATABASE_URL
const skip = !serverUrl
  ? 'runs against a PostgreSQL server (DATABASE_URL): the embedded database has no PgBouncer'
  : !pgbouncerBinary()
    ? "install Debian's pgbouncer (apt-get install pgbouncer) to run it"
    : false

/** DATABASE_URL through a PgBouncer in transaction mode, for this test. */
async function throughPgBouncer(t: Test): Promise<string> {
  const bouncer = await startPgBouncer('transaction', serverUrl!)
  t.teardown(bouncer.stop)
  const url = bouncer.urlFor(serverUrl!)
  process.env.DATABASE_URL = url
  t.teardown(() => void (process.env.DATABASE_URL = serverUrl))
  return url
}

t.test('migrated databases made six at once, three times over, through PgBouncer: none waits on another for good', { skip, timeout: 90_000 }, async (t) => {
  await throughPgBouncer(t)
  const prefixes = new Set<string>()
  for (let round = 0; round < 3; round++) {
    const databases = await Promise.all(Array.from({ length: 6 }, () => createTestDatabase({ migrated: true })))
    for (const database of databases) {
      const prefix = await withServer(database.env.DATABASE_URL!, async (client) => {
        const { rows } = await client.query(`SELECT value FROM public.sys_setting WHERE name = 'tenant_role_prefix'`)
        return rows[0].value as string
      })
      prefixes.add(prefix)
    }
    await Promise.all(databases.map((database) => database.drop()))
  }
  t.equal(prefixes.size, 18, 'eighteen migrated copies, each with its own tenant role prefix')
})

t.test('the migrated template is made through PgBouncer, and a database is copied from it', { skip, timeout: 90_000 }, async (t) => {
  const url = await throughPgBouncer(t)
  // A family of its own: the suites' template (plinth_template_<key>) is left as it is.
  const family = `plinth_kit_${randomBytes(4).toString('hex')}`
  t.teardown(() => withServer(serverUrl!, async (client) => {
    const { rows } = await client.query(`SELECT datname FROM pg_database WHERE starts_with(datname, $1)`, [family])
    for (const { datname } of rows) await client.query(`DROP DATABASE ${datname} WITH (FORCE)`)
  }))
  const template = await migratedServerTemplate(url, family)
  t.match(template, new RegExp(`^${family}_[0-9a-f]{12}$`))
  const copy = `${family}_copy`
  await withServer(url, (client) => client.query(`CREATE DATABASE ${copy} TEMPLATE ${template}`))
  const copyUrl = new URL(serverUrl!)
  copyUrl.pathname = `/${copy}`
  const migrations = await withServer(copyUrl.toString(), (client) => client.query(`SELECT count(*)::int AS n FROM public.sys_migration`))
  t.ok(migrations.rows[0].n > 0, `the copy holds the applied migrations (${migrations.rows[0].n})`)
  t.equal(await migratedServerTemplate(url, family), template, 'asked again: the same template, not made twice')
})
