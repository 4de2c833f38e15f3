// Databases made by earlier plinths upgrade by migrations alone, with every tenant, key, grant and
// row there afterwards:
// - ea774a4 (public migrations 001 and 002, tenant migration 001, no tenant roles, RBAC tables
//   under their first names), rebuilt here statement by statement: the tenants get their roles and
//   their module tables, and the key made back then still reads its tenant's items;
// - 726d13e (the last before migration 007 renamed sys_tenant_plugin), made by that commit's own
//   CLI, run as a real process from a copy of its tree.
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import pino from 'pino'
import t from 'tap'
import { verifyAudit } from '../src/platform/audit/verify.ts'
import { PROJECT_ROOT } from '../src/app/paths.ts'
import { openDatabase } from '../src/platform/db/database.ts'
import { readMigrations } from '../src/tenancy/migration-files.ts'
import { migratePublic } from '../src/tenancy/migrations.ts'
import { createTestDatabase } from '../src/testing/database.ts'
import { startTestHost } from '../src/testing/host.ts'
import { finished } from './helpers/process.ts'
import { spawn } from 'node:child_process'
import { childEnv } from './helpers/process.ts'

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
  t.same(th.host.lastMigration!.publicApplied, ['003_change_feed_xid.sql', '004_tenant_roles.sql', '005_tenant_migration_by_file.sql', '006_tenant_boundary.sql', '007_module_word.sql', '008_audit_trail.sql', '009_console_session.sql', '010_jobs.sql'], 'only the newer public migrations ran')
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

/** The tree of an earlier commit, with this checkout's node_modules; undefined when the clone lacks that commit. */
function treeAt(commit: string): string | undefined {
  try {
    execFileSync('git', ['-C', PROJECT_ROOT, 'cat-file', '-e', `${commit}^{commit}`], { stdio: 'ignore' })
  } catch {
    return undefined
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `plinth-at-${commit}-`))
  execFileSync('sh', ['-c', `git -C "${PROJECT_ROOT}" archive ${commit} | tar -x -C "${dir}"`])
  fs.symlinkSync(path.join(PROJECT_ROOT, 'node_modules'), path.join(dir, 'node_modules'))
  return dir
}

const BEFORE_MODULE_WORD = '726d13e'
// Six CLI processes of that commit, each compiling its TypeScript: on the PostgreSQL pass only, to
// keep CI within its time. The embedded database's upgrade path is the ea774a4 test above.
const earlierTree = process.env.DATABASE_URL ? treeAt(BEFORE_MODULE_WORD) : undefined
const skipEarlier = !process.env.DATABASE_URL
  ? { skip: 'runs with DATABASE_URL (the PostgreSQL pass); the embedded upgrade is the ea774a4 test' }
  : earlierTree ? {} : { skip: `this clone has no commit ${BEFORE_MODULE_WORD} (a shallow clone)` }

t.test(`a database made by ${BEFORE_MODULE_WORD}'s own CLI upgrades: modules, keys, grants and rows intact`, skipEarlier, async (t) => {
  const tree = earlierTree!
  t.teardown(() => fs.rmSync(tree, { recursive: true, force: true }))
  const database = await createTestDatabase()
  t.teardown(database.drop)
  const earlier = async (...args: string[]) => {
    const run = await finished(spawn(process.execPath, [path.join(tree, 'bin/plinth.js'), ...args], { cwd: tree, env: childEnv(database.env), stdio: ['ignore', 'pipe', 'pipe'] }))
    t.equal(run.code, 0, `${BEFORE_MODULE_WORD}: plinth ${args.join(' ')} ${run.stderr}`)
    return run.stdout
  }
  const demo = JSON.parse(await earlier('demo', '--json'))
  await earlier('tenant', 'create', 'acme', '--name', 'Acme')
  await earlier('plugin', 'disable', 'tickets', '--tenant', 'acme')
  await earlier('role', 'create', 'reader', '--tenant', 'demo')
  await earlier('role', 'grant', 'reader', 'inventory.items.read', '--tenant', 'demo')
  const reader = JSON.parse(await earlier('key', 'create', '--tenant', 'demo', '--name', 'reader', '--role', 'reader', '--json'))

  const th = await startTestHost({ database })
  t.teardown(th.close)
  t.same(th.host.lastMigration!.publicApplied, ['007_module_word.sql', '008_audit_trail.sql', '009_console_session.sql', '010_jobs.sql'], 'only the rename, the audit trail, console sessions and jobs ran')
  // tickets 1.2.0's file, for the tenant that has it enabled (acme has it disabled: applied when enabled).
  t.same(th.host.lastMigration!.tenants, [{ tenant: 'demo', source: 'tickets', status: 'ok', applied: ['003_reminders.sql'] }], "only tickets' new file was pending, for demo")
  // The trail starts at the upgrade: what that plinth did is not made up after the fact.
  const { rows: trail } = await th.host.pool.query('SELECT action, target FROM public.audit_event ORDER BY seq')
  t.same(trail, [{ action: 'migration.applied', target: 'tickets/003_reminders.sql' }], "the audit trail starts with the upgrade's own step")
  t.match(await verifyAudit(th.host.pool), { ok: true, checked: 1 }, 'and verifies')
  await th.host.tenants.suspend('acme')
  await th.host.tenants.resume('acme')
  t.match(await verifyAudit(th.host.pool), { ok: true, checked: 3 }, 'and chains what is done after it')
  t.same(
    th.host.registry.list().map((x) => x.code),
    ['acme', 'demo'],
  )
  const acme = th.host.registry.byCode('acme')!
  t.same(th.host.tenantModules.enabledFor(acme.id).sort(), ['inventory'], "acme's modules as that plinth left them: tickets disabled")
  t.match(th.host.tenantModules.state(acme.id, 'tickets'), { enabled: false }, 'and the disabled row is kept')

  const asDemo = { authorization: `Bearer ${demo.key}` }
  const items = await th.app.inject({ url: '/api/plugins/inventory/items', headers: asDemo })
  t.equal(items.statusCode, 200, "the demo key made back then reads, on the tenant's own login")
  t.ok(items.json().items.length > 0, 'and finds the sample items made back then')
  const asReader = { authorization: `Bearer ${reader.key}` }
  t.equal((await th.app.inject({ url: '/api/plugins/inventory/items', headers: asReader })).statusCode, 200, 'the grant made back then holds')
  t.equal((await th.app.inject({ method: 'POST', url: '/api/plugins/inventory/items', headers: asReader, payload: { name: 'x' } })).statusCode, 403, 'and gives no more')
  t.equal((await th.app.inject({ url: '/api/plugins/tickets/tickets', headers: asDemo })).statusCode, 200, "demo's tickets still serve")

  // An instance not yet upgraded, in a fleet rolling over, still reads and writes the old name.
  await th.host.pool.query(`UPDATE public.sys_tenant_plugin SET enabled = true WHERE plugin_id = 'tickets' AND tenant_id = $1`, [acme.id])
  await th.host.tenantModules.refresh(acme.id)
  t.same(th.host.tenantModules.enabledFor(acme.id).sort(), ['inventory', 'tickets'], 'through the view migration 007 leaves for it')
})
