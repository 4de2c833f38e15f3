// The audit trail as operators rely on it: every change an operator makes through the admin API or
// the CLI is exactly one row, by the right actor, written in the change's transaction; a change
// that fails leaves none; the chain catches every kind of tampering and names where; rows cannot
// be changed, and pruning seals first. What depends on the database (the chain, the trigger, a
// rollback) runs on both passes; the walks through routes, forms and commands on PostgreSQL's.
import path from 'node:path'
import t from 'tap'
import type pg from 'pg'
import { startTestHost, TEST_ADMIN_TOKEN, type TestHost } from '../src/testing/host.ts'
import { createTestDatabase } from '../src/testing/database.ts'
import { verifyAudit } from '../src/platform/audit/verify.ts'
import { plinth } from './helpers/process.ts'
import { postgresPassOnly } from './helpers/passes.ts'

const admin = { authorization: `Bearer ${TEST_ADMIN_TOKEN}` }

async function rowsAfter(pool: pg.Pool, seq: number) {
  const { rows } = await pool.query(
    `SELECT seq::int, actor_kind, actor_id, action, target, tenant, module, outcome, request_id, client_address, changes FROM public.audit_event WHERE seq > $1 ORDER BY seq`,
    [seq],
  )
  return rows
}

async function headSeq(pool: pg.Pool): Promise<number> {
  const { rows } = await pool.query('SELECT seq::int FROM public.audit_head')
  return rows[0].seq
}

/** Runs `step` and returns the audit rows it wrote. */
async function audited(th: TestHost, step: () => Promise<unknown>) {
  const before = await headSeq(th.host.pool)
  await step()
  return rowsAfter(th.host.pool, before)
}

t.test('every admin route that changes something writes one row, by the admin token, with its request id and address', postgresPassOnly, async (t) => {
  const th = await startTestHost()
  t.teardown(th.close)
  const call = async (method: 'POST' | 'PUT' | 'DELETE', url: string, payload?: object) => {
    const res = await th.app.inject({ method, url, headers: admin, payload })
    t.ok(res.statusCode < 300, `${method} ${url}: ${res.statusCode} ${res.statusCode >= 300 ? res.body : ''}`)
    return res
  }
  const walk: [string, string, 'POST' | 'PUT' | 'DELETE', string, object?][] = [
    ['tenant.created', 'acme', 'POST', '/api/admin/tenants', { code: 'acme', name: 'Acme' }],
    ['tenant.suspended', 'acme', 'POST', '/api/admin/tenants/acme/suspend'],
    ['tenant.resumed', 'acme', 'POST', '/api/admin/tenants/acme/resume'],
    ['role.created', 'editor', 'POST', '/api/admin/tenants/acme/roles', { name: 'editor' }],
    ['role.granted', 'editor', 'PUT', '/api/admin/tenants/acme/roles/editor/grants/inventory.items.read'],
    ['role.assigned', 'editor', 'PUT', '/api/admin/tenants/acme/roles/editor/principals/user:ann'],
    ['role.unassigned', 'editor', 'DELETE', '/api/admin/tenants/acme/roles/editor/principals/user:ann'],
    ['role.revoked', 'editor', 'DELETE', '/api/admin/tenants/acme/roles/editor/grants/inventory.items.read'],
    ['role.deleted', 'editor', 'DELETE', '/api/admin/tenants/acme/roles/editor'],
    ['module.disabled', 'inventory', 'POST', '/api/admin/tenants/acme/modules/inventory/disable'],
    ['module.enabled', 'inventory', 'POST', '/api/admin/tenants/acme/modules/inventory/enable'],
  ]
  for (const [action, target, method, url, payload] of walk) {
    let res: Awaited<ReturnType<typeof call>> | undefined
    const rows = await audited(th, async () => (res = await call(method, url, payload)))
    t.equal(rows.length, 1, `${method} ${url}: one row`)
    t.match(rows[0], { action, target, tenant: 'acme', actor_kind: 'admin-token', actor_id: null, outcome: 'success', request_id: res!.headers['x-request-id'], client_address: '127.0.0.1' }, action)
  }

  // A key: one row, with its roles and without its secret (nor anything like it).
  const keyRows = await audited(th, async () => {
    const res = await call('POST', '/api/admin/tenants/acme/keys', { name: 'ci' })
    const key = res.json()
    const revoke = await audited(th, () => call('DELETE', `/api/admin/tenants/acme/keys/${key.id}`))
    t.match(revoke, [{ action: 'key.revoked', target: key.id, tenant: 'acme', actor_kind: 'admin-token' }])
    const { rows } = await th.host.pool.query('SELECT * FROM public.audit_event')
    t.notMatch(JSON.stringify(rows), key.key.slice(`plk_${key.id}_`.length), 'no row holds the secret')
  })
  t.match(keyRows[0], { action: 'key.created', changes: { name: 'ci', roles: [] } })

  const bulk = await audited(th, () => call('POST', '/api/admin/tenants/bulk', { tenants: [{ code: 'b1', name: 'B1' }, { code: 'b2', name: 'B2' }, { code: 'acme', name: 'taken' }] }))
  t.same(bulk.map((r) => [r.action, r.tenant]), [['tenant.created', 'b1'], ['tenant.created', 'b2']], 'bulk: a row per tenant created, none for the one refused')
  const dropped = await audited(th, () => call('DELETE', '/api/admin/tenants/b2?confirm=b2'))
  t.match(dropped, [{ action: 'tenant.dropped', target: 'b2', actor_kind: 'admin-token' }])

  // Refused changes leave nothing: a duplicate, a missing role, a bad grant, a drop unconfirmed.
  for (const [method, url, payload] of [
    ['POST', '/api/admin/tenants', { code: 'acme', name: 'again' }],
    ['PUT', '/api/admin/tenants/acme/roles/nobody/grants/inventory.items.read'],
    ['DELETE', '/api/admin/tenants/acme/roles/nobody'],
    ['DELETE', '/api/admin/tenants/acme'],
  ] as const) {
    const rows = await audited(th, async () => {
      const res = await th.app.inject({ method, url, headers: admin, payload })
      t.ok(res.statusCode >= 400, `${method} ${url} refused (${res.statusCode})`)
    })
    t.same(rows, [], `${method} ${url}: no row`)
  }
  t.match(await verifyAudit(th.host.pool), { ok: true, checked: await headSeq(th.host.pool) })
})

t.test('a change that rolls back leaves no row; a row only for what committed', async (t) => {
  const th = await startTestHost()
  t.teardown(th.close)
  const acme = await th.createTenant('acme')
  const rows = await audited(th, async () => {
    await t.rejects(
      th.host.keys.create(acme, 'doomed', async () => {
        throw new Error('fails after the insert')
      }),
    )
  })
  t.same(rows, [], 'the key was not made, and no row says it was')
  t.same((await th.host.keys.list(acme.id)).map((k) => k.name), [])
})

t.test('appends from many transactions at once keep one unbroken chain', async (t) => {
  const th = await startTestHost()
  t.teardown(th.close)
  const acme = await th.createTenant('acme')
  const before = await headSeq(th.host.pool)
  await Promise.all(Array.from({ length: 24 }, (_, i) => th.host.roles.create(acme, `r${i}`)))
  const rows = await rowsAfter(th.host.pool, before)
  t.same(rows.map((r) => r.seq), Array.from({ length: 24 }, (_, i) => before + 1 + i), 'one place each, none skipped')
  t.match(await verifyAudit(th.host.pool), { ok: true })
})

t.test('rows cannot be changed or removed, by the owner either', async (t) => {
  const th = await startTestHost()
  t.teardown(th.close)
  await th.createTenant('acme')
  for (const statement of ["UPDATE public.audit_event SET action = 'tenant.renamed'", 'DELETE FROM public.audit_event', 'TRUNCATE public.audit_event']) {
    await t.rejects(th.host.pool.query(statement), { code: '42501', message: /cannot be changed or removed/ }, statement)
  }
  t.match(await verifyAudit(th.host.pool), { ok: true })
})

t.test('verify names the first broken link, whatever was done to the rows', async (t) => {
  const th = await startTestHost()
  t.teardown(th.close)
  for (const code of ['t1', 't2', 't3']) {
    const tenant = await th.createTenant(code)
    await th.host.roles.create(tenant, 'editor')
  }
  t.equal(await headSeq(th.host.pool), 6)
  const { rows: [four] } = await th.host.pool.query('SELECT * FROM public.audit_event WHERE seq = 4')
  // Each tampering in a transaction that sets triggers aside (as a superuser can), checked there, rolled back.
  const tampered = async (what: string, sql: string, params: unknown[] = []) => {
    const client = await th.host.pool.connect()
    try {
      await client.query("BEGIN; SET LOCAL session_replication_role = 'replica'")
      await client.query(sql, params)
      return await verifyAudit(client)
    } finally {
      await client.query('ROLLBACK')
      client.release()
    }
  }
  t.match(await tampered('edit', "UPDATE public.audit_event SET target = 'someone-else' WHERE seq = 4"), { ok: false, checked: 3, broken: { seq: 4, problem: /content does not match its hash: it was edited/ } }, 'an edited row')
  t.match(await tampered('edit changes', `UPDATE public.audit_event SET changes = '{"description": "x"}' WHERE seq = 2`), { ok: false, broken: { seq: 2, problem: /edited/ } }, 'an edited change')
  t.match(await tampered('delete', 'DELETE FROM public.audit_event WHERE seq = 3'), { ok: false, broken: { seq: 3, problem: /row 3 is missing/ } }, 'a deleted row')
  t.match(
    await tampered('reorder', 'UPDATE public.audit_event SET seq = 102 WHERE seq = 2; UPDATE public.audit_event SET seq = 2 WHERE seq = 3; UPDATE public.audit_event SET seq = 3 WHERE seq = 102'),
    { ok: false, broken: { seq: 2, problem: /does not link|does not match/ } },
    'two rows swapped',
  )
  // An inserted row whose own hash is right (its forger knows the scheme) still breaks the next link.
  const { createHash } = await import('node:crypto')
  const { canonicalEvent, chainInput } = await import('../src/platform/audit/append.ts')
  const forged = { ...four, at: new Date(four.at).toISOString(), actorKind: 'system', actorId: null, action: 'role.created', target: 'backdoor', tenant: 't2', module: null, outcome: 'success', requestId: null, clientAddress: null, changes: {} }
  const forgedHash = createHash('sha256').update(chainInput(four.hash, 5, canonicalEvent(forged))).digest('hex')
  t.match(await tamperedInsert(), { ok: false, broken: { seq: 6, problem: /does not link to the row before it/ } }, 'an inserted row')
  async function tamperedInsert() {
    const client = await th.host.pool.connect()
    try {
      await client.query("BEGIN; SET LOCAL session_replication_role = 'replica'")
      // Rows 5 and 6 move up one place (by way of 15 and 16: the key is checked row by row).
      await client.query('UPDATE public.audit_event SET seq = seq + 10 WHERE seq >= 5')
      await client.query('UPDATE public.audit_event SET seq = seq - 9 WHERE seq >= 15')
      await client.query(
        `INSERT INTO public.audit_event (seq, at, actor_kind, action, target, tenant, outcome, changes, prev_hash, hash) VALUES (5, $1, 'system', 'role.created', 'backdoor', 't2', 'success', '{}', $2, $3)`,
        [forged.at, four.hash, forgedHash],
      )
      await client.query('UPDATE public.audit_head SET seq = 7')
      return await verifyAudit(client)
    } finally {
      await client.query('ROLLBACK')
      client.release()
    }
  }
  t.match(await tampered('drop the newest', 'DELETE FROM public.audit_event WHERE seq >= 5'), { ok: false, broken: { seq: 5, problem: /chain ends at row 4, but its head is at row 6/ } }, 'the newest rows removed')
  t.match(
    await tampered('prune by hand', `DELETE FROM public.audit_event WHERE seq <= 2; UPDATE public.audit_head SET anchor_seq = 2, anchor_hash = (SELECT prev_hash FROM public.audit_event WHERE seq = 3)`),
    { ok: false, broken: { seq: 2, problem: /rows up to 2 were removed without a prune that sealed them/ } },
    'old rows removed without a seal',
  )
  t.match(await tampered('truncate', 'TRUNCATE public.audit_event'), { ok: false, broken: { seq: 1, problem: /chain ends at row 0, but its head is at row 6/ } }, 'the table emptied')

  // The newest rows removed and the head rewritten to match: only a head kept outside catches it.
  await th.host.requests!.auditCheckpoints.write()
  const checkpoint = th.logs.filter((l) => l.msg === 'audit checkpoint').at(-1)!
  t.match(checkpoint, { audit: { seq: 6, witness: /^6:[0-9a-f]{64}$/ } }, 'the checkpoint line carries the head')
  const client = await th.host.pool.connect()
  try {
    await client.query("BEGIN; SET LOCAL session_replication_role = 'replica'")
    const { rows: [five] } = await client.query('SELECT hash FROM public.audit_event WHERE seq = 4')
    await client.query('DELETE FROM public.audit_event WHERE seq >= 5')
    await client.query('UPDATE public.audit_head SET seq = 4, hash = $1', [five.hash])
    t.match(await verifyAudit(client), { ok: true }, 'without a witness, a consistent cut looks whole')
    t.match(await verifyAudit(client, { seq: checkpoint.audit.seq, hash: checkpoint.audit.hash }), { ok: false, broken: { problem: /log recorded a head at row 6/ } }, 'the logged head catches it')
  } finally {
    await client.query('ROLLBACK')
    client.release()
  }
  t.match(await verifyAudit(th.host.pool, { seq: checkpoint.audit.seq, hash: checkpoint.audit.hash }), { ok: true }, 'untouched, it verifies against the logged head')
})

t.test('failed admin authentications: one row per address and window, with the count', postgresPassOnly, async (t) => {
  const th = await startTestHost()
  t.teardown(th.close)
  for (let i = 0; i < 3; i++) {
    const res = await th.app.inject({ method: 'GET', url: '/api/admin/tenants', headers: { authorization: 'Bearer wrong' } })
    t.equal(res.statusCode, 401)
  }
  await th.host.requests!.authFailures.stop()
  const rows = await rowsAfter(th.host.pool, 0)
  t.match(rows, [{ action: 'auth.failed', outcome: 'failure', actor_kind: 'anonymous', client_address: '127.0.0.1', changes: { failures: 3, refused: 0 } }])
  t.notMatch(JSON.stringify(rows), 'wrong', 'not the token it tried')
})

t.test('reading: filters and cursor paging over HTTP', postgresPassOnly, async (t) => {
  const th = await startTestHost()
  t.teardown(th.close)
  const acme = await th.createTenant('acme')
  await th.createTenant('beta')
  for (let i = 0; i < 5; i++) await th.host.roles.create(acme, `r${i}`)
  const get = async (query: string) => {
    const res = await th.app.inject({ method: 'GET', url: `/api/admin/audit${query}`, headers: admin })
    t.equal(res.statusCode, 200, res.body)
    return res.json()
  }
  const first = await get('?tenant=acme&limit=4')
  t.same(first.events.map((e: any) => e.target), ['r4', 'r3', 'r2', 'r1'], 'newest first')
  const second = await get(`?tenant=acme&limit=4&cursor=${first.next}`)
  t.same(second.events.map((e: any) => e.target), ['r0', 'acme'])
  t.equal(second.next, null, 'the last page says so')
  t.same((await get('?action=tenant')).events.map((e: any) => e.target), ['beta', 'acme'], 'every action of an object')
  t.same((await get('?action=role.created&actor=system')).events.length, 5, 'by action and actor kind')
  t.same((await get('?actor=admin-token')).events, [])
  t.same((await get(`?since=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`)).events, [], 'by time')
  const bad = await th.app.inject({ method: 'GET', url: '/api/admin/audit?cursor=abc', headers: admin })
  t.equal(bad.statusCode, 400)
  t.equal(bad.headers['content-type'], 'application/problem+json; charset=utf-8')
  t.match((await get('/verify')), { ok: true, checked: 7 })
  t.equal((await th.app.inject({ method: 'GET', url: '/api/admin/audit' })).statusCode, 401, 'the admin token, as every admin route')
})

t.test('the CLI: its changes are the OS user\'s; list, export, verify and prune as an operator runs them', postgresPassOnly, async (t) => {
  const database = await createTestDatabase()
  t.teardown(database.drop)
  const env = database.env
  const run = async (args: string[], code = 0) => {
    const result = await plinth(args, env)
    t.equal(result.code, code, `plinth ${args.join(' ')}: ${result.stderr}`)
    return result
  }
  const user = (await import('node:os')).userInfo().username
  const pg = (await import('pg')).default
  const reader = new pg.Pool({ connectionString: database.env.DATABASE_URL, max: 1 })
  t.teardown(() => reader.end())
  const fs = await import('node:fs/promises')
  const list = path.join(await fs.mkdtemp(path.join((await import('node:os')).tmpdir(), 'plinth-audit-cli-')), 'tenants.json')
  await fs.writeFile(list, JSON.stringify([{ code: 'bulk1', name: 'Bulk 1' }, { code: 'bulk2', name: 'Bulk 2' }]))
  let keyId = ''
  await run(['migrate']) // a new database: its tables made, nothing audited
  // Each command that changes something, and the rows it must write.
  const walk: [string[], string[]][] = [
    [['tenant', 'create', 'acme', '--name', 'Acme'], ['tenant.created']],
    [['tenant', 'suspend', 'acme'], ['tenant.suspended']],
    [['tenant', 'resume', 'acme'], ['tenant.resumed']],
    [['key', 'create', '--tenant', 'acme', '--name', 'bot', '--json'], ['key.created']],
    [['role', 'create', 'ops', '--tenant', 'acme'], ['role.created']],
    [['role', 'grant', 'ops', 'inventory.*', '--tenant', 'acme'], ['role.granted']],
    [['role', 'assign', 'ops', '--principal', 'user:ann', '--tenant', 'acme'], ['role.assigned']],
    [['role', 'unassign', 'ops', '--principal', 'user:ann', '--tenant', 'acme'], ['role.unassigned']],
    [['role', 'revoke', 'ops', 'inventory.*', '--tenant', 'acme'], ['role.revoked']],
    [['role', 'delete', 'ops', '--tenant', 'acme'], ['role.deleted']],
    [['module', 'disable', 'inventory', '--tenant', 'acme'], ['module.disabled']],
    [['module', 'enable', 'inventory', '--tenant', 'acme'], ['module.enabled']],
    [['tenant', 'create-many', list], ['tenant.created', 'tenant.created']],
    [['tenant', 'drop', 'bulk2', '--confirm', 'bulk2'], ['tenant.dropped']],
    [['migrate'], []],
  ]
  for (const [args, actions] of walk) {
    const { rows: [{ seq }] } = await reader.query('SELECT seq::int FROM public.audit_head')
    const result = await run(args)
    if (args[0] === 'key') keyId = JSON.parse(result.stdout).id
    const rows = await rowsAfter(reader, seq)
    t.same(rows.map((r) => [r.action, r.actor_kind, r.actor_id]), actions.map((a) => [a, 'cli', user]), `plinth ${args.join(' ')}: ${actions.join(', ') || 'no row'}`)
  }
  const revoked = await (async () => {
    const { rows: [{ seq }] } = await reader.query('SELECT seq::int FROM public.audit_head')
    await run(['key', 'revoke', keyId, '--tenant', 'acme'])
    return rowsAfter(reader, seq)
  })()
  t.match(revoked, [{ action: 'key.revoked', target: keyId, actor_kind: 'cli' }])
  const listed = JSON.parse((await run(['audit', 'list', '--json', '--limit', '3'])).stdout)
  t.same(listed.events.map((e: any) => e.action), ['key.revoked', 'tenant.dropped', 'tenant.created'], 'newest first')
  t.equal(listed.next, String(listed.events[2].seq), 'and the cursor of the next page')

  const ndjson = (await run(['audit', 'export'])).stdout.trim().split('\n').map((line) => JSON.parse(line))
  t.same(ndjson.map((e) => e.seq), Array.from({ length: 16 }, (_, i) => i + 1), 'oldest first, every event')
  const csv = (await run(['audit', 'export', '--format', 'csv', '--tenant', 'acme', '--action', 'tenant'])).stdout.trim().split('\n')
  t.equal(csv[0], 'seq,at,actorKind,actorId,action,target,tenant,module,outcome,requestId,clientAddress,changes,prevHash,hash')
  t.equal(csv.length, 4, 'a header and the three tenant events of acme')
  t.match(csv[1], /^1,[^,]+,cli,[^,]+,tenant\.created,acme,acme,,success,,,"\{""name"":""Acme"",""domain"":null,/, "changes quoted as CSV quotes")

  t.match((await run(['audit', 'verify'])).stdout, /audit trail intact: 16 events checked, head 16:[0-9a-f]{64}/)
  const pruned = JSON.parse((await run(['audit', 'prune', '--before', new Date(Date.now() + 1000).toISOString(), '--json'])).stdout)
  t.same(pruned, { removed: 16, through: 16 })
  const afterPrune = JSON.parse((await run(['audit', 'list', '--json'])).stdout).events
  t.match(afterPrune, [{ seq: 17, action: 'audit.pruned', actorKind: 'cli', changes: { through: 16, removed: 16 } }], 'the seal is what is left')
  await run(['tenant', 'suspend', 'acme'])
  t.match((await run(['audit', 'verify'])).stdout, /intact: 2 events checked, head 18:/, 'the kept chain verifies from its seal')

  // Tampered, for real: the command says where, and exits 1.
  const client = new pg.Client({ connectionString: database.env.DATABASE_URL })
  await client.connect()
  t.teardown(() => client.end())
  await client.query("BEGIN; SET LOCAL session_replication_role = 'replica'; UPDATE public.audit_event SET actor_id = 'someone' WHERE seq = 18; COMMIT")
  const broken = await run(['audit', 'verify'], 1)
  t.match(broken.stdout, /audit trail BROKEN at event 18: row 18's content does not match its hash/)

})

t.test('migrations: a row per step applied to each tenant, and one per failure', postgresPassOnly, async (t) => {
  const fs = await import('node:fs/promises')
  const os = await import('node:os')
  const path = await import('node:path')
  const modules = await fs.mkdtemp(path.join(os.tmpdir(), 'plinth-audit-'))
  t.teardown(() => fs.rm(modules, { recursive: true, force: true }))
  const notes = path.join(modules, 'notes')
  await fs.mkdir(path.join(notes, 'migrations'), { recursive: true })
  await fs.writeFile(path.join(notes, 'module.config.ts'), "export default { id: 'notes', name: 'Notes', version: '1.0.0', api: '1.x', permissions: [] }\n")
  await fs.writeFile(path.join(notes, 'plugin.ts'), "export const permissions = []\nexport default { meta: { id: 'notes', name: 'Notes', version: '1.0.0', api: '1.x' }, register() {} }\n")
  await fs.writeFile(path.join(notes, 'migrations/001_notes.sql'), 'CREATE TABLE notes (id serial PRIMARY KEY);\n')
  const database = await createTestDatabase()
  t.teardown(database.drop)
  const env = { PLINTH_MODULE_DIRS: modules }
  const first = await startTestHost({ database, env })
  await first.createTenant('acme')
  await first.createTenant('beta')
  await first.close()

  await fs.writeFile(path.join(notes, 'migrations/002_body.sql'), 'ALTER TABLE notes ADD COLUMN body text;\n')
  const second = await startTestHost({ database, env })
  // Tenants migrate several at once: their rows in either order.
  const byTenant = (rows: Record<string, any>[]) => rows.sort((x, y) => x.tenant.localeCompare(y.tenant))
  const applied = byTenant(await rowsAfter(second.host.pool, 2))
  t.match(
    applied,
    [
      { action: 'migration.applied', target: 'notes/002_body.sql', tenant: 'acme', module: 'notes', actor_kind: 'system', changes: { files: ['002_body.sql'] } },
      { action: 'migration.applied', target: 'notes/002_body.sql', tenant: 'beta', module: 'notes', actor_kind: 'system' },
    ],
    'the host migrating at start: one row per tenant, by the system',
  )
  t.equal(applied.length, 2)
  await second.close()

  await fs.writeFile(path.join(notes, 'migrations/003_broken.sql'), 'ALTER TABLE notes ADD COLUMN nope no_such_type;\n')
  const third = await startTestHost({ database, env })
  t.teardown(third.close)
  const failed = byTenant(await rowsAfter(third.host.pool, 4))
  t.match(
    failed,
    [
      { action: 'migration.failed', target: 'notes', tenant: 'acme', outcome: 'failure', changes: { error: /no_such_type/ } },
      { action: 'migration.failed', target: 'notes', tenant: 'beta', outcome: 'failure' },
    ],
    'a failure: one row per tenant, its error, and nothing of the step',
  )
  t.equal(failed.length, 2)
  t.match(await third.host.migrationStatus(), { failed: [{ tenant: 'acme', module: 'notes', error: /no_such_type/ }, { tenant: 'beta', module: 'notes' }], pending: [{ tenant: 'acme', source: 'notes', files: ['003_broken.sql'] }, { tenant: 'beta' }] })
  await third.close()

  // Fixed, and retried for one tenant (the console's retry, `plinth migrate --tenant acme`): that tenant alone.
  await fs.writeFile(path.join(notes, 'migrations/003_broken.sql'), 'ALTER TABLE notes ADD COLUMN nope text;\n')
  const fourth = await startTestHost({ database, env, migrate: false })
  t.teardown(fourth.close)
  const seq = await headSeq(fourth.host.pool)
  const retried = await fourth.host.migrateTenant('acme')
  t.match(retried, [{ tenant: 'acme', source: 'notes', status: 'ok', applied: ['003_broken.sql'] }])
  t.match(await rowsAfter(fourth.host.pool, seq), [{ action: 'migration.applied', target: 'notes/003_broken.sql', tenant: 'acme' }])
  t.match(await fourth.host.migrationStatus(), { failed: [{ tenant: 'beta', module: 'notes' }], pending: [{ tenant: 'beta', source: 'notes' }] }, 'beta is as it was')
  t.equal((await fourth.host.migrationStatus()).failed.length, 1)
  t.match(await verifyAudit(fourth.host.pool), { ok: true })
})

t.test('every console form that changes something writes one row, by the signed-in operator', postgresPassOnly, async (t) => {
  const th = await startTestHost()
  t.teardown(th.close)
  const csrfOf = (body: string) => /name="_csrf" value="([^"]+)"/.exec(body)![1]
  let cookies = ''
  let csrf = ''
  const signIn = await th.app.inject({ method: 'GET', url: '/admin/sign-in' })
  cookies = [signIn.headers['set-cookie']].flat()[0]!.split(';')[0]
  csrf = csrfOf(signIn.body)
  const post = async (url: string, fields: Record<string, string | string[]>, expect = 303) => {
    const body = new URLSearchParams({ _csrf: csrf })
    for (const [name, value] of Object.entries(fields)) for (const v of [value].flat()) body.append(name, v)
    const res = await th.app.inject({ method: 'POST', url, headers: { cookie: cookies, 'content-type': 'application/x-www-form-urlencoded' }, payload: body.toString() })
    t.equal(res.statusCode, expect, `POST ${url}: ${res.statusCode}`)
    return res
  }
  const signedIn = await audited(th, async () => {
    const res = await post('/admin/sign-in', { operator: 'Cy', token: TEST_ADMIN_TOKEN })
    cookies += '; ' + [res.headers['set-cookie']].flat().find((c) => c!.startsWith('plinth_console='))!.split(';')[0]
  })
  t.match(signedIn, [{ action: 'console.signed-in', actor_kind: 'console', actor_id: /^Cy \(session [\w-]{12}\)$/ }])
  // The session's forms carry a token bound to it.
  csrf = csrfOf((await th.app.inject({ method: 'GET', url: '/admin/tenants', headers: { cookie: cookies } })).body)
  const walk: [string, string, Record<string, string | string[]>, number?][] = [
    ['tenant.created', '/admin/tenants', { code: 'acme', name: 'Acme' }],
    ['tenant.suspended', '/admin/tenants/acme/suspend', {}],
    ['tenant.resumed', '/admin/tenants/acme/resume', {}],
    ['module.disabled', '/admin/tenants/acme/modules/tickets/disable', {}],
    ['module.enabled', '/admin/tenants/acme/modules/tickets/enable', {}],
    ['key.created', '/admin/tenants/acme/keys', { name: 'bot', roles: 'admin' }, 201],
  ]
  for (const [action, url, fields, status] of walk) {
    const rows = await audited(th, () => post(url, fields, status))
    t.match(rows, [{ action, actor_kind: 'console', actor_id: /^Cy \(session/, tenant: 'acme', client_address: '127.0.0.1' }], `${url}: ${action}`)
    t.equal(rows.length, 1)
  }
  const [key] = await th.host.keys.list((await th.host.tenants.get('acme')).id)
  t.match(await audited(th, () => post(`/admin/tenants/acme/keys/${key.id}/revoke`, {})), [{ action: 'key.revoked', target: key.id, actor_kind: 'console' }])
  t.same(await audited(th, () => post('/admin/migrations/acme/retry', {})), [], 'a retry with nothing pending changes nothing')
  t.same(await audited(th, () => post('/admin/tenants/acme/drop', { confirm: 'wrong' }, 400)), [], 'a drop not confirmed changes nothing')
  t.match(await audited(th, () => post('/admin/tenants/acme/drop', { confirm: 'acme' })), [{ action: 'tenant.dropped', actor_kind: 'console' }])
  t.match(await audited(th, () => post('/admin/sign-out', {})), [{ action: 'console.signed-out', actor_kind: 'console', actor_id: /^Cy/ }])
})
