// A database made by an earlier plinth (ea774a4: public migrations 001 and 002, tenant migration
// 001, no tenant roles, RBAC tables under their first names) upgrades by migrations alone: every
// tenant, key, grant and row is there afterwards, the tenants get their roles and their module
// tables, and the key made back then still reads its tenant's items.
import { createHash } from 'node:crypto'
import path from 'node:path'
import pino from 'pino'
import t from 'tap'
import { PROJECT_ROOT } from '../src/host/host.ts'
import { openDatabase } from '../src/tenancy/database.ts'
import { migratePublic, readMigrations } from '../src/tenancy/migrations.ts'
import { createTestDatabase } from '../src/testing/database.ts'
import { startTestHost } from '../src/testing/host.ts'

const EARLIER_PUBLIC = ['001_platform.sql', '002_api_keys.sql']
const KEY_ID = 'oldkey000001'
const KEY_SECRET = 'S'.repeat(43)

/** What the earlier plinth's `tenant create acme`, `key create` and `role grant` left in the database. */
async function earlierPlinth(env: { DATABASE_URL?: string; PLINTH_DATA_DIR: string }) {
  const db = await openDatabase({ databaseUrl: env.DATABASE_URL, dataDir: env.PLINTH_DATA_DIR, poolMax: 2, acquireTimeoutMs: 5000, log: pino({ level: 'silent' }) })
  try {
    const publicFiles = (await readMigrations(path.join(PROJECT_ROOT, 'migrations/public'))).filter((f) => EARLIER_PUBLIC.includes(f.name))
    await migratePublic(db.pool, publicFiles)
    const [rbac] = await readMigrations(path.join(PROJECT_ROOT, 'migrations/tenant'))
    const [items] = await readMigrations(path.join(PROJECT_ROOT, 'src/plugins/inventory/migrations'))
    const client = await db.pool.connect()
    try {
      await client.query('BEGIN')
      const { rows } = await client.query(`INSERT INTO public.sys_tenant (code, name, schema_name) VALUES ('acme', 'Acme', 't_acme') RETURNING id`)
      const tenantId = rows[0].id
      await client.query('CREATE SCHEMA t_acme; SET LOCAL search_path TO t_acme, public')
      await client.query(rbac.sql)
      await client.query(items.sql)
      await client.query(
        `INSERT INTO public.sys_tenant_migration (tenant_id, source, name, checksum) VALUES ($1, 'host', $2, $3), ($1, 'inventory', $4, $5)`,
        [tenantId, rbac.name, rbac.checksum, items.name, items.checksum],
      )
      await client.query(`INSERT INTO public.sys_tenant_plugin (tenant_id, plugin_id) VALUES ($1, 'inventory'), ($1, 'tickets')`, [tenantId])
      await client.query(`INSERT INTO items (name, quantity) VALUES ('kept since ea774a4', 7)`)
      await client.query(`INSERT INTO public.sys_api_key (id, tenant_id, name, secret_hash) VALUES ($1, $2, 'old', $3)`, [
        KEY_ID,
        tenantId,
        createHash('sha256').update(KEY_SECRET).digest('hex'),
      ])
      await client.query(`INSERT INTO role (name) VALUES ('reader')`)
      await client.query(`INSERT INTO role_grant (role_id, permission) SELECT id, 'inventory.items.read' FROM role WHERE name = 'reader'`)
      await client.query(`INSERT INTO principal_role (principal_id, role_id) SELECT $1, id FROM role WHERE name = 'reader'`, [`key:${KEY_ID}`])
      await client.query('COMMIT')
    } finally {
      client.release()
    }
  } finally {
    await db.close()
  }
}

t.test('an earlier database upgrades by migrations alone, with everything in it intact', async (t) => {
  const database = await createTestDatabase()
  t.teardown(database.drop)
  await earlierPlinth(database.env)

  const th = await startTestHost({ database })
  t.same(th.host.lastMigration!.publicApplied, ['003_change_feed_xid.sql', '004_tenant_roles.sql', '005_tenant_migration_by_file.sql', '006_tenant_boundary.sql'], 'only the newer public migrations ran')
  t.match(th.host.lastMigration!.tenants, [{ tenant: 'acme', source: 'host', status: 'ok', applied: ['002_rbac_names.sql'] }])

  const acme = th.host.registry.byCode('acme')!
  t.match(acme.role, /^plinth_[0-9a-f]{8}_t_acme$/, 'the tenant has its role')
  const { rows: owners } = await th.host.pool.query(`SELECT tablename, tableowner FROM pg_tables WHERE schemaname = 't_acme' ORDER BY tablename`)
  t.same(
    owners.map((r) => [r.tablename, r.tableowner === acme.role ? 'tenant role' : 'host']),
    [
      ['items', 'tenant role'],
      ['plinth_principal_role', 'host'],
      ['plinth_role', 'host'],
      ['plinth_role_grant', 'host'],
      // tickets was enabled back then but never migrated: its tables are made now, as the tenant's.
      ['ticket_comments', 'tenant role'],
      ['tickets', 'tenant role'],
    ],
    "module tables are the tenant's; the RBAC tables, renamed, the host's",
  )

  const res = await th.app.inject({ url: '/api/plugins/inventory/items', headers: { authorization: `Bearer plk_${KEY_ID}_${KEY_SECRET}` } })
  t.equal(res.statusCode, 200, 'the key made back then reads, through the grant made back then')
  t.match(res.json().items, [{ name: 'kept since ea774a4', quantity: 7 }])
  const roles = await th.host.roles.list(acme)
  t.match(roles.find((r) => r.name === 'reader'), { grants: ['inventory.items.read'], principals: [`key:${KEY_ID}`] })
  t.ok(roles.some((r) => r.name === 'admin'))
  const created = await th.app.inject({ method: 'POST', url: '/api/plugins/inventory/items', headers: { authorization: `Bearer plk_${KEY_ID}_${KEY_SECRET}` }, payload: { name: 'x' } })
  t.equal(created.statusCode, 403, 'and no more than it granted')

  // A second start has nothing to do.
  await th.close()
  const again = await startTestHost({ database })
  t.teardown(again.close)
  t.same(again.host.lastMigration!.publicApplied, [])
  t.same(again.host.lastMigration!.tenants, [])
})
