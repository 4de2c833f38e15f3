// One tenant out and back in, as an operator does it: export, import under another code, clone,
// replace. A round trip gives the same rows in every table (counts and ordered checksums), of the
// built-in modules and of a stranger's module from a folder outside the project whose tables use
// what goes wrong by hand (serial and identity columns, a table renamed by a migration, a
// generated column, a trigger, a self-reference, bytea, arrays, jsonb, escapes); the next INSERT
// on every table succeeds; a damaged or incompatible archive creates nothing; a failure midway
// leaves no tenant, schema, role or row. The database work runs on both passes; the walk through
// real CLI processes on PostgreSQL's.
import { createHash } from 'node:crypto'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { Readable, Writable } from 'node:stream'
import { spawn } from 'node:child_process'
import http from 'node:http'
import t, { type Test } from 'tap'
import type pg from 'pg'
import { startTestHost, TEST_ADMIN_TOKEN, type TestHost } from '../src/testing/host.ts'
import { TenantArchives } from '../src/app/tenant-archives.ts'
import { PROJECT_ROOT } from '../src/app/paths.ts'
import { childEnv, finished, plinth } from './helpers/process.ts'
import { postgresPassOnly } from './helpers/passes.ts'
import { assertProblem } from './helpers/problem.ts'

const admin = { authorization: `Bearer ${TEST_ADMIN_TOKEN}` }

// A stranger's module: no package.json, its own folder, migrations a module author would write.
const LEDGER_FILES: Record<string, string> = {
  'ledger/module.config.ts': `export default { id: 'ledger', name: 'Ledger', version: '1.0.0', api: '1.x', permissions: ['ledger.memos.read'] }\n`,
  'ledger/plugin.ts': `import { sql } from 'drizzle-orm'
export const permissions = ['ledger.memos.read']
export default {
  meta: { id: 'ledger', name: 'Ledger', version: '1.0.0', api: '1.x' },
  async register(ctx: any) {
    ctx.router.get('/memos', ctx.rbac.require('ledger.memos.read'), async (req: any, res: any) => {
      const rows = await ctx.withTenantTx(req.tenant.id, async (db: any) => (await db.execute(sql\`SELECT id, body FROM memo ORDER BY id\`)).rows)
      res.json({ memos: rows })
    })
  },
}
`,
  'ledger/migrations/001_ledger.sql': `CREATE TABLE note (
  id serial PRIMARY KEY,
  body text NOT NULL,
  tags text[],
  meta jsonb,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE entry (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  note_id int REFERENCES note (id),
  amount numeric(12, 2) NOT NULL,
  doubled numeric GENERATED ALWAYS AS (amount * 2) STORED,
  memo text,
  raw bytea
);
CREATE TABLE node (id int PRIMARY KEY, parent int REFERENCES node (id));
CREATE FUNCTION entry_touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.memo := 'touched by trigger'; RETURN NEW; END $$;
CREATE TRIGGER entry_touch BEFORE INSERT ON entry FOR EACH ROW WHEN (NEW.memo IS NULL) EXECUTE FUNCTION entry_touch();
INSERT INTO note (body) VALUES ('seeded by the migration');
`,
  'ledger/migrations/002_rename.sql': `ALTER TABLE note RENAME TO memo;\n`,
}

async function ledgerFolder(t: { teardown(fn: () => unknown): void }): Promise<string> {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'plinth-archive-modules-'))
  t.teardown(() => fs.rm(root, { recursive: true, force: true }))
  for (const [file, text] of Object.entries(LEDGER_FILES)) {
    await fs.mkdir(path.dirname(path.join(root, file)), { recursive: true })
    await fs.writeFile(path.join(root, file), text)
  }
  return root
}

async function startHost(t: Test) {
  const th = await startTestHost({ env: { PLINTH_MODULE_DIRS: await ledgerFolder(t) } })
  t.teardown(th.close)
  const ledger = th.host.modules.find((m) => m.id === 'ledger')
  t.equal(ledger?.status, 'loaded', `the stranger's module loads (${ledger?.reason ?? 'no reason given'})`)
  return th
}

/** A host with tenant acme, its data in every module's tables, and acme's archive. */
async function archivedTenant(t: Test) {
  const th = await startHost(t)
  await th.createTenant('acme')
  await fill(th, 'acme')
  return { th, archive: await exported(th, 'acme') }
}

/** Data in every module's tables, with the values a hand-made copy gets wrong. */
async function fill(th: TestHost, code: string) {
  await th.host.withTenantTx(code, async (db) => {
    const q = (text: string) => db.execute(text as any)
    await q(`INSERT INTO items (name, sku, quantity) SELECT 'item ' || g, 'SKU-' || g, g FROM generate_series(1, 300) g`)
    await q(`INSERT INTO tickets (title, priority) SELECT 'ticket ' || g, 'high' FROM generate_series(1, 40) g`)
    await q(`INSERT INTO ticket_comments (ticket_id, author, body) SELECT id, 'ann', E'line one\\nline two\\ttabbed \\\\ backslash \\u00e9' FROM tickets`)
    await q(`INSERT INTO memo (body, tags, meta) VALUES (E'a\\\\.b', ARRAY['x', 'y"z', NULL], '{"k": [1, "two", null]}'), (E'\\\\.', NULL, NULL), ('ünïcödé ✓', '{}', '{}')`)
    await q(`INSERT INTO entry (note_id, amount, memo, raw) SELECT (SELECT min(id) FROM memo), g * 1.25, 'kept ' || g, decode('00ff0a5c', 'hex') FROM generate_series(1, 25) g`)
    await q(`INSERT INTO node VALUES (1, NULL), (2, 1), (3, 2)`)
  })
}

const TABLES = ['items', 'tickets', 'ticket_comments', 'memo', 'entry', 'node']

/** Each table's row count and the MD5 of its rows in order, read as the platform. */
async function digest(pool: pg.Pool, schema: string, tables = TABLES): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  for (const table of tables) {
    const { rows } = await pool.query(`SELECT count(*) AS n, md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) AS sum FROM "${schema}"."${table}" t`)
    out[table] = `${rows[0].n} rows, ${rows[0].sum}`
  }
  return out
}

/** The schema's indexes and constraints, by definition (its own name taken out): what import must leave as migrations made them. */
async function structure(pool: pg.Pool, schema: string) {
  const { rows } = await pool.query(
    `SELECT replace(indexdef, $1 || '.', '') AS definition FROM pg_indexes WHERE schemaname = $1
     UNION ALL
     SELECT conname || ' ' || replace(pg_get_constraintdef(k.oid), $1 || '.', '') FROM pg_constraint k WHERE k.connamespace = $1::regnamespace
     ORDER BY 1`,
    [schema],
  )
  return rows.map((r) => r.definition)
}

/** An archive in memory (tests'): export writes to this. */
function collector() {
  const chunks: Buffer[] = []
  const out = new Writable({ write: (chunk, _e, done) => (chunks.push(chunk), done()) })
  return { out, bytes: () => Buffer.concat(chunks) }
}

async function writeArchive(t: { teardown(fn: () => unknown): void }, bytes: Buffer | string): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'plinth-archive-'))
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }))
  const file = path.join(dir, 'tenant.plinth-archive')
  await fs.writeFile(file, bytes)
  return file
}

async function exported(th: TestHost, code: string, withAccess = false): Promise<Buffer> {
  const sink = collector()
  await new TenantArchives(th.host).export(code, sink.out, { withAccess })
  return sink.bytes()
}

/** What is left of a tenant code: its row, its schema, its role. */
async function remains(pool: pg.Pool, code: string) {
  const schema = `t_${code.replaceAll('-', '_')}`
  const { rows } = await pool.query(
    `SELECT (SELECT count(*)::int FROM public.sys_tenant WHERE code = $1) AS tenants,
            (SELECT count(*)::int FROM pg_namespace WHERE nspname = $2) AS schemas,
            (SELECT count(*)::int FROM pg_roles r JOIN public.sys_setting s ON s.name = 'tenant_role_prefix' AND r.rolname = s.value || '_' || $2) AS roles`,
    [code, schema],
  )
  return rows[0]
}

/** Every tenant, schema and tenant role there is: what a failed import must leave as it found it. */
async function everything(pool: pg.Pool) {
  const { rows } = await pool.query(
    `SELECT (SELECT string_agg(code, ',' ORDER BY code) FROM public.sys_tenant) AS tenants,
            (SELECT string_agg(nspname, ',' ORDER BY nspname) FROM pg_namespace WHERE nspname LIKE 't\\_%') AS schemas,
            (SELECT count(*)::int FROM pg_roles r JOIN public.sys_setting s ON s.name = 'tenant_role_prefix' AND starts_with(r.rolname, s.value || '_')) AS roles`,
  )
  return rows[0]
}

/** The archive with its manifest changed by `edit` (the rows, and so their checksums, untouched). */
function withManifest(archive: Buffer, edit: (manifest: any) => void): Buffer {
  const text = archive.toString('utf8')
  const at = text.lastIndexOf('MANIFEST ')
  const manifest = JSON.parse(text.slice(at + 'MANIFEST '.length))
  edit(manifest)
  return Buffer.from(`${text.slice(0, at)}MANIFEST ${JSON.stringify(manifest)}\n`)
}

/** The archive with one table's rows replaced, its manifest's count and SHA-256 made to match: a crafted archive. */
function withRows(archive: Buffer, table: string, rows: string): Buffer {
  const text = archive.toString('utf8')
  const header = `TABLE ${JSON.stringify({ name: table })}\n`
  const start = text.indexOf(header) + header.length
  const end = text.indexOf('\\.\n', start) === start ? start : text.indexOf('\n\\.\n', start) + 1
  const crafted = Buffer.from(text.slice(0, start) + rows + text.slice(end))
  return withManifest(crafted, (m) => {
    const entry = m.tables.find((x: any) => x.name === table)
    entry.rows = rows.split('\n').length - 1
    entry.sha256 = createHash('sha256').update(rows).digest('hex')
  })
}

/**
 * Imports `bytes` as `as` and checks it is refused with `code` and a detail matching `detail`,
 * leaving every tenant, schema and tenant role as they were, and nothing under the code.
 */
function importRefused(t: Test, th: TestHost) {
  const archives = new TenantArchives(th.host)
  return async (bytes: Buffer | string, code: string, detail: RegExp, what: string, as = 'acme-copy') => {
    const state = await everything(th.host.pool)
    const err = await archives.importFile(await writeArchive(t, bytes), { as }).then(() => null, (e) => e)
    t.equal(err?.code, code, `${what}: ${code}`)
    t.match(`${err?.message} ${err?.detail ?? ""}`, detail, what)
    t.same(await everything(th.host.pool), state, `${what}: no tenant, schema or role was made or left`)
    if (as !== 'acme') t.same(await remains(th.host.pool, as), { tenants: 0, schemas: 0, roles: 0 })
  }
}

t.test('a round trip gives every table the same rows; the next INSERT on every table succeeds; the import is one audit event', async (t) => {
  const th = await startHost(t)
  const source = await th.createTenant('acme')
  await fill(th, 'acme')
  const archives = new TenantArchives(th.host)
  const archive = await exported(th, 'acme')
  t.match(archive.subarray(0, 24).toString(), /^PLINTH TENANT ARCHIVE 1\n/, 'the archive starts with its format line')
  t.notOk(archive.toString().includes('plinth_role'), 'without --with-access no RBAC table is archived')

  const before = Number((await th.host.pool.query('SELECT seq FROM public.audit_head')).rows[0].seq)
  const result = await archives.importFile(await writeArchive(t, archive), { as: 'acme-copy' })
  t.equal(result.tenant.code, 'acme-copy')
  t.equal(result.tenant.schema, 't_acme_copy', 'the imported tenant gets its own schema')
  t.not(result.tenant.id, source.id)
  t.same(await digest(th.host.pool, 't_acme_copy'), await digest(th.host.pool, 't_acme'), 'every table: same count, same ordered checksum')
  t.equal(result.rows, 300 + 40 + 40 + 4 + 25 + 3)
  const indexes = await structure(th.host.pool, 't_acme_copy')
  t.same(indexes, await structure(th.host.pool, 't_acme'), 'every index and constraint is there, as the migrations made it (those set aside while loading, made again)')
  t.ok(indexes.some((d) => /items_name_idx/.test(d)) && indexes.some((d) => /ticket_comments_ticket_id_fkey FOREIGN KEY/.test(d)), 'among them a plain index and a foreign key')

  const entry = await th.host.pool.query(`SELECT memo, doubled::text FROM t_acme_copy.entry ORDER BY id LIMIT 1`)
  t.same(entry.rows[0], { memo: 'kept 1', doubled: '2.50' }, 'the trigger did not rewrite loaded rows; the generated column was computed again')
  const events = await th.host.pool.query('SELECT action, target FROM public.audit_event WHERE seq > $1 ORDER BY seq', [before])
  t.same(
    events.rows.filter((r) => r.action.startsWith('tenant.')),
    [{ action: 'tenant.imported', target: 'acme-copy' }],
    'one tenant.imported row, no tenant.created',
  )

  // The next INSERT on every table, as the module's own code would write it (serial, identity,
  // a uuid default, a table renamed by a migration whose sequence kept the old name).
  await th.host.withTenantTx('acme-copy', async (db) => {
    for (const statement of [
      `INSERT INTO items (name) VALUES ('new')`,
      `INSERT INTO tickets (title) VALUES ('new')`,
      `INSERT INTO ticket_comments (ticket_id, author, body) VALUES ((SELECT max(id) FROM tickets), 'bo', 'new')`,
      `INSERT INTO memo (body) VALUES ('new')`,
      `INSERT INTO entry (amount) VALUES (1)`,
      `INSERT INTO node VALUES (4, 3)`,
    ]) {
      await db.execute(statement as any)
    }
  })
  t.pass('an INSERT on every table succeeded after the import')
  const next = await th.host.pool.query(`SELECT (SELECT max(id) FROM t_acme_copy.memo) AS memo, (SELECT max(id) FROM t_acme_copy.entry)::int AS entry`)
  t.same(next.rows[0], { memo: 5, entry: 26 }, 'serial and identity columns go on from the archived values')

  const clone = await archives.clone('acme', { as: 'acme-clone' })
  t.equal(clone.tenant.code, 'acme-clone')
  t.same(await digest(th.host.pool, 't_acme_clone'), await digest(th.host.pool, 't_acme'), 'a clone: the same rows in every table')
})

t.test('with --with-access, roles and grants come along and keys are re-issued with new secrets; the old ones do not work', async (t) => {
  const th = await startHost(t)
  await th.createTenant('acme')
  await fill(th, 'acme')
  await th.host.roles.create(await th.host.tenants.get('acme'), 'reader')
  await th.host.roles.grant(await th.host.tenants.get('acme'), 'reader', 'ledger.memos.read')
  const kept = await th.host.createKey('acme', 'reporting', ['reader'])
  const revoked = await th.host.createKey('acme', 'old', ['reader'])
  await th.host.keys.revoke(await th.host.tenants.get('acme'), revoked.id)

  const archive = await exported(th, 'acme', true)
  t.notOk(archive.toString().includes(kept.key.slice(`plk_${kept.id}_`.length)), 'no secret is in the archive')
  t.notOk(/secret|hash/i.test(archive.toString().slice(archive.toString().lastIndexOf('MANIFEST '))), 'nor any hash')
  const result = await new TenantArchives(th.host).importFile(await writeArchive(t, archive), { as: 'acme-two' })
  t.same(result.keys.map((k) => k.name), ['reporting'], 'the live key is re-issued, the revoked one is not')
  const call = (key: string) => th.app.inject({ method: 'GET', url: '/api/plugins/ledger/memos', headers: { authorization: `Bearer ${key}`, 'x-tenant': 'acme-two' } })
  const ok = await call(result.keys[0].key)
  t.equal(ok.statusCode, 200, `the re-issued key holds its role: ${ok.body}`)
  t.equal(ok.json().memos.length, 4)
  // The archived key is acme's, not the import's.
  assertProblem(t, await call(kept.key), 403, 'TENANT_MISMATCH')
  const roles = await th.host.roles.list(await th.host.tenants.get('acme-two'))
  t.same(
    roles.map((r) => [r.name, r.grants, r.principals]),
    [['admin', ['*'], []], ['reader', ['ledger.memos.read'], [`key:${result.keys[0].id}`]]],
    "the roles, their grants, and the re-issued key as the holder; the revoked key's holding is gone",
  )
})

t.test('a damaged, cut, foreign or incompatible archive is refused before anything is created', async (t) => {
  const { th, archive } = await archivedTenant(t)
  const refused = importRefused(t, th)
  const text = archive.toString('utf8')
  await refused(text.replace('item 17\t', 'item 71\t'), 'ARCHIVE_CORRUPT', /rows of table items do not match the manifest's SHA-256/, 'a row changed')
  await refused(text.replace(/TABLE \{"name":"node"\}\n[^]*?\\\.\n/, ''), 'ARCHIVE_CORRUPT', /its manifest lists/, 'a table taken out')
  await refused(archive.subarray(0, archive.length - 200), 'ARCHIVE_INVALID', /cut short/, 'the archive cut short')
  await refused('{"not": "an archive"}\n', 'ARCHIVE_INVALID', /not a plinth tenant archive/, 'another file')
  await refused(withManifest(archive, (m) => m.modules.find((x: any) => x.id === 'ledger').migrations.push({ name: '003_future.sql', checksum: 'abc' })), 'ARCHIVE_INCOMPATIBLE', /newer module ledger: it has 003_future.sql applied.*ends at 002_rename.sql/, 'made by a newer module')
  await refused(withManifest(archive, (m) => (m.modules.find((x: any) => x.id === 'ledger').migrations[0].checksum = 'edited')), 'ARCHIVE_INCOMPATIBLE', /different 001_ledger.sql/, 'a migration edited on one side')
  await refused(withManifest(archive, (m) => m.modules.push({ id: 'payroll', enabled: true, migrations: [] })), 'ARCHIVE_INCOMPATIBLE', /module payroll, which is not loaded/, 'a module this host lacks')

  await refused(archive, 'TENANT_EXISTS', /already exists; give --replace/, 'the code of a live tenant, without --replace', 'acme')
})

t.test('a failure midway leaves no tenant, schema, role or row behind', async (t) => {
  const { th, archive } = await archivedTenant(t)
  const fails = importRefused(t, th)
  // Passes every check of the archive, then fails as it loads: the last table's rows break its key.
  await fails(withRows(archive, 'node', '1\t\\N\n1\t\\N\n'), '23505', /node_pkey.*Key \(id\)=\(1\) is duplicated/, 'a row that breaks a primary key, in a table loaded after others')
  // Created at 001 only (the archive says so), the rows of the renamed table find no table.
  await fails(withManifest(archive, (m) => m.modules.find((x: any) => x.id === 'ledger').migrations.pop()), 'ARCHIVE_INCOMPATIBLE', /table memo, which the migrations the archive names do not make/, 'rows for a table the archived migrations do not make')
  // A foreign key to a row that is not there.
  await fails(withRows(archive, 'entry', '900\t99999\t1.00\tx\t\\N\n'), '23503', /foreign key/, 'a row that refers to a missing row')
})

t.test('--replace: the live tenant serves until the import is ready, then they swap; its keys and roles stay', async (t) => {
  const th = await startHost(t)
  const live = await th.createTenant('acme', { domain: 'acme.example.com' })
  await fill(th, 'acme')
  const key = await th.host.createKey('acme', 'app', ['admin'])
  const archive = await exported(th, 'acme')
  const expected = await digest(th.host.pool, 't_acme')
  // Last night's copy restored over today's changes.
  await th.host.withTenantTx('acme', (db) => db.execute(`DELETE FROM memo WHERE body = 'ünïcödé ✓'` as any))
  const archives = new TenantArchives(th.host)

  // A replace that fails leaves the live tenant as it was, serving.
  const broken = await archives.importFile(await writeArchive(t, withRows(archive, 'node', '1\t\\N\n1\t\\N\n')), { as: 'acme', replace: true }).then(() => null, (e) => e)
  t.equal(broken?.code, '23505', 'the failed replace is refused')
  const call = () => th.app.inject({ method: 'GET', url: '/api/plugins/ledger/memos', headers: { authorization: `Bearer ${key.key}`, 'x-tenant': 'acme' } })
  t.equal((await call()).json().memos.length, 3, 'the live tenant still serves its own rows')
  t.equal((await th.host.tenants.get('acme')).id, live.id)

  const result = await archives.importFile(await writeArchive(t, archive), { as: 'acme', replace: true })
  t.ok(result.replaced)
  t.equal(result.tenant.code, 'acme')
  t.equal(result.tenant.domain, 'acme.example.com', "it keeps the replaced tenant's domain")
  t.not(result.tenant.id, live.id)
  t.same(await digest(th.host.pool, result.tenant.schema), expected, "the archive's rows")
  const after = await call()
  t.equal(after.statusCode, 200, `the live key still works on the replaced tenant: ${after.body}`)
  t.equal(after.json().memos.length, 4)
  t.same(await remains(th.host.pool, 'acme'), { tenants: 1, schemas: 0, roles: 0 }, "the replaced tenant's schema and role are dropped")
  t.equal((await th.host.pool.query('SELECT count(*)::int AS n FROM pg_namespace WHERE nspname = $1', [result.tenant.schema])).rows[0].n, 1)
})

t.test('export refuses a tenant whose data points out of its schema, naming the constraint', async (t) => {
  const th = await startHost(t)
  await th.createTenant('acme')
  await th.host.pool.query(`CREATE TABLE public.country (code text PRIMARY KEY); ALTER TABLE t_acme.memo ADD COLUMN country text CONSTRAINT memo_country_fk REFERENCES public.country (code)`)
  const err = await exported(th, 'acme').then(() => null, (e) => e)
  t.equal(err?.code, 'TENANT_NOT_EXPORTABLE')
  t.match(err?.detail, /Table memo .*foreign key \(memo_country_fk\) to public\.country/)
})

t.test('the admin API: an export streamed, an import from its body, a clone; errors in the one shape', async (t) => {
  const th = await startHost(t)
  await th.createTenant('acme')
  await fill(th, 'acme')
  const auditedSince = async (seq: number) =>
    (await th.host.pool.query('SELECT action, target FROM public.audit_event WHERE seq > $1 ORDER BY seq', [seq])).rows.filter((r) => r.action.startsWith('tenant.'))
  const headOfTrail = async () => Number((await th.host.pool.query('SELECT coalesce(max(seq), 0) AS seq FROM public.audit_event')).rows[0].seq)
  const before = await headOfTrail()
  const res = await th.app.inject({ method: 'POST', url: '/api/admin/tenants/acme/export', headers: admin })
  t.equal(res.statusCode, 200)
  t.equal(res.headers['content-type'], 'application/vnd.plinth.tenant-archive')
  t.match(res.headers['content-disposition'], /filename="acme.plinth-archive"/)
  const imported = await th.app.inject({
    method: 'POST',
    url: '/api/admin/tenants/import?as=acme-api&name=Acme%20API',
    headers: { ...admin, 'content-type': 'application/vnd.plinth.tenant-archive' },
    payload: Readable.from([res.rawPayload]),
  })
  t.equal(imported.statusCode, 201, imported.body)
  t.match(imported.json(), { tenant: { code: 'acme-api', name: 'Acme API' }, from: 'acme', replaced: false })
  t.same(await digest(th.host.pool, 't_acme_api'), await digest(th.host.pool, 't_acme'))
  const cloned = await th.app.inject({ method: 'POST', url: '/api/admin/tenants/acme/clone', headers: admin, payload: { as: 'acme-staging' } })
  t.equal(cloned.statusCode, 201, cloned.body)
  t.same(await digest(th.host.pool, 't_acme_staging'), await digest(th.host.pool, 't_acme'))
  t.same(
    await auditedSince(before),
    [
      { action: 'tenant.exported', target: 'acme' },
      { action: 'tenant.imported', target: 'acme-api' },
      { action: 'tenant.cloned', target: 'acme-staging' },
    ],
    'each is one row of the audit trail, and none is also a tenant.created',
  )
  const afterWrites = await headOfTrail()

  assertProblem(t, await th.app.inject({ method: 'POST', url: '/api/admin/tenants/nobody/export', headers: admin }), 404, 'TENANT_NOT_FOUND')
  const corrupt = res.rawPayload.toString('utf8').replace('item 17\t', 'item 71\t')
  assertProblem(
    t,
    await th.app.inject({ method: 'POST', url: '/api/admin/tenants/import?as=acme-bad', headers: { ...admin, 'content-type': 'application/octet-stream' }, payload: corrupt }),
    400,
    'ARCHIVE_CORRUPT',
  )
  assertProblem(t, await th.app.inject({ method: 'POST', url: '/api/admin/tenants/import?as=acme-api', headers: { ...admin, 'content-type': 'application/octet-stream' }, payload: res.rawPayload }), 409, 'TENANT_EXISTS')
  assertProblem(t, await th.app.inject({ method: 'POST', url: '/api/admin/tenants/acme/export' }), 401, 'UNAUTHORIZED')
  t.same(await auditedSince(afterWrites), [], 'a refused export or import writes no tenant row to the audit trail')
})

t.test('a caller who leaves in the middle of an export: the export ends and gives back its connection', async (t) => {
  const th = await startHost(t)
  await th.createTenant('acme')
  // Far more than the stream's buffers hold: the export waits on the caller, who then leaves.
  await th.host.pool.query(`INSERT INTO t_acme.items (name, sku) SELECT 'item ' || g, g || repeat('x', 400) FROM generate_series(1, 60000) g`)
  const url = new URL(await th.app.listen({ port: 0, host: '127.0.0.1' }))
  // A caller that reads the first bytes, then closes its connection.
  const status = await new Promise<number>((resolve, reject) => {
    const req = http.request({ host: url.hostname, port: url.port, method: 'POST', path: '/api/admin/tenants/acme/export', headers: admin }, (res) => {
      res.once('data', () => {
        req.destroy()
        resolve(res.statusCode!)
      })
    })
    req.on('error', (err) => (err.message === 'socket hang up' ? undefined : reject(err)))
    req.end()
  })
  t.equal(status, 200)
  const archiveSessions = async () => (await th.host.pool.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'plinth archive'`)).rows[0].n
  const deadline = Date.now() + 10_000
  while (th.database.mode === 'postgres' && (await archiveSessions()) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100))
  if (th.database.mode === 'postgres') t.equal(await archiveSessions(), 0, "the export's connection is closed")
  // On the embedded database the export's transaction would hold the only one there is.
  const again = await th.app.inject({ method: 'POST', url: '/api/admin/tenants/acme/export', headers: admin })
  t.equal(again.statusCode, 200, `the next export runs: ${again.statusCode === 200 ? '' : JSON.stringify(th.logs.filter((l) => l.level >= 50).map((l) => l.err?.message ?? l.msg))}`)
  const text = again.rawPayload.toString()
  t.ok(text.includes('\nMANIFEST ') && text.endsWith('\n'), 'and is whole')
})

t.test('plinth tenant export | import | clone as processes: a file, standard input, --json', postgresPassOnly, async (t) => {
  const modules = await ledgerFolder(t)
  const th = await startTestHost({ env: { PLINTH_MODULE_DIRS: modules } })
  t.teardown(th.close)
  await th.createTenant('acme')
  await fill(th, 'acme')
  const env = { ...th.database.env, PLINTH_MODULE_DIRS: modules }
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'plinth-archive-cli-'))
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }))
  const file = path.join(dir, 'acme.plinth-archive')

  const out = await plinth(['tenant', 'export', 'acme', '--out', file], env)
  t.equal(out.code, 0, out.stderr)
  t.match(out.stdout, /exported tenant acme: 6 tables, 412 rows, modules inventory, ledger, tickets/)
  t.same(await fs.readdir(dir), ['acme.plinth-archive'], 'no partial file is left beside it')
  const again = await plinth(['tenant', 'export', 'acme', '--out', file], env)
  t.equal(again.code, 1, 'an existing file is not overwritten')
  // An export's memory is the process's own, whatever the tenant's size (1 GB: docs/benchmarks.md).
  // On Node 22 and 24 it was near 300 MB until drizzle-orm's imports went round Node's package
  // lookup (src/platform/drizzle-imports.ts).
  if (await fs.access('/usr/bin/time').then(() => true, () => false)) {
    const measured = path.join(dir, 'measured')
    const run = await finished(spawn('/usr/bin/time', ['-f', 'peak %M KB', process.execPath, path.join(PROJECT_ROOT, 'bin/plinth.js'), 'tenant', 'export', 'acme', '--out', measured], { env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'] }))
    const peak = Number(/peak (\d+) KB/.exec(run.stderr)?.[1]) / 1024
    t.ok(run.code === 0 && peak < 150, `an export's peak RSS is under 150 MB (${peak.toFixed(0)} MB, Node ${process.versions.node})`)
    await fs.rm(measured)
  }

  const imported = await plinth(['tenant', 'import', file, '--as', 'acme-file', '--json'], env)
  t.equal(imported.code, 0, imported.stderr)
  t.match(JSON.parse(imported.stdout), { tenant: { code: 'acme-file' }, rows: 412 })

  // Standard output into standard input: export | import.
  const exporter = spawn(process.execPath, [path.join(PROJECT_ROOT, 'bin/plinth.js'), 'tenant', 'export', 'acme'], { env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'] })
  const importer = spawn(process.execPath, [path.join(PROJECT_ROOT, 'bin/plinth.js'), 'tenant', 'import', '-', '--as', 'acme-pipe'], { env: childEnv(env), stdio: ['pipe', 'pipe', 'pipe'] })
  exporter.stdout.pipe(importer.stdin)
  const [e, i] = await Promise.all([finished(exporter), finished(importer)])
  t.equal(e.code, 0, e.stderr)
  t.match(e.stderr, /exported tenant acme: 6 tables/, "the export's summary goes to stderr, the archive to stdout")
  t.equal(i.code, 0, i.stderr)
  t.match(i.stdout, /imported tenant acme-pipe \(schema t_acme_pipe\) from acme: 6 tables, 412 rows/)

  const cloned = await plinth(['tenant', 'clone', 'acme', '--as', 'acme-clone', '--with-access'], env)
  t.equal(cloned.code, 0, cloned.stderr)
  for (const code of ['acme_file', 'acme_pipe', 'acme_clone']) {
    t.same(await digest(th.host.pool, `t_${code}`), await digest(th.host.pool, 't_acme'), `${code}: the same rows in every table`)
  }
  const corrupt = path.join(dir, 'corrupt')
  await fs.writeFile(corrupt, (await fs.readFile(file, 'utf8')).replace('item 17\t', 'item 71\t'))
  const bad = await plinth(['tenant', 'import', corrupt, '--as', 'acme-bad'], env)
  t.equal(bad.code, 1)
  t.match(bad.stderr, /plinth: The archive was changed or damaged: the rows of table items do not match/)
})
