// Identity and RBAC as callers meet them: real API keys and JWTs over real HTTP, roles in the
// tenant's schema, deny by default, tenant binding, and changes reaching a second instance.
import { generateKeyPairSync } from 'node:crypto'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { SignJWT } from 'jose'
import t from 'tap'
import { countDatabaseWork } from './helpers/count-database-work.ts'
import { startTestHost, TEST_ADMIN_TOKEN } from '../src/testing/host.ts'
import { assertProblem } from './helpers/problem.ts'
import { startServer } from './helpers/process.ts'

const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
const publicPem = publicKey.export({ type: 'spki', format: 'pem' }) as string
const keyDir = await fs.mkdtemp(path.join(os.tmpdir(), 'plinth-jwt-'))
const publicKeyFile = path.join(keyDir, 'idp.pem')
await fs.writeFile(publicKeyFile, publicPem)
t.teardown(() => fs.rm(keyDir, { recursive: true, force: true }))

const th = await startTestHost({
  env: { PLINTH_JWT_PUBLIC_KEY_FILE: publicKeyFile, PLINTH_JWT_ISSUER: 'https://idp.example.com', PLINTH_JWT_AUDIENCE: 'plinth' },
})
t.teardown(th.close)
const acme = await th.createTenant('acme', { domain: 'acme.example.com' })
const beta = await th.createTenant('beta', { domain: 'beta.example.com' })
const secrets: string[] = []
const issue = async (tenant: string, name: string, roles: string[] = []) => {
  const created = await th.host.createKey(tenant, name, roles)
  secrets.push(created.key, created.key.slice('plk_'.length + created.id.length + 1))
  return created
}
const bearer = (key: string) => ({ authorization: `Bearer ${key}` })
const items = (headers: Record<string, string>, method: 'GET' | 'POST' = 'GET') =>
  th.app.inject({ method, url: '/api/plugins/inventory/items', headers, ...(method === 'POST' ? { payload: { name: 'x' } } : {}) })

t.test("the seed's sequence: 403 until granted, 2xx, 403 again after the revoke, on a second instance too", async (t) => {
  const { key, id } = await issue('acme', 'ci-bot')
  assertProblem(t, await items(bearer(key)), 403, 'FORBIDDEN')
  await th.host.roles.create(acme, 'reader')
  await th.host.roles.grant(acme, 'reader', 'inventory.items.read')
  await th.host.roles.assign(acme, 'reader', `key:${id}`)
  t.equal((await items(bearer(key))).statusCode, 200, '2xx once granted')

  const other = await startServer({ ...th.database.env, PLINTH_ADMIN_TOKEN: TEST_ADMIN_TOKEN })
  t.teardown(() => other.child.kill('SIGKILL'))
  const remote = () => fetch(`${other.url}/api/plugins/inventory/items`, { headers: bearer(key) }).then((r) => r.status)
  t.equal(await remote(), 200, 'the second instance agrees')

  await th.host.roles.revoke(acme, 'reader', 'inventory.items.read')
  t.equal((await items(bearer(key))).statusCode, 403, 'revoked here at once')
  const started = Date.now()
  let status = await remote()
  while (status !== 403 && Date.now() - started < 1000) status = await remote()
  t.equal(status, 403, `revoked on the second instance after ${Date.now() - started} ms (within a second)`)

  await th.host.roles.grant(acme, 'reader', 'inventory.items.read')
  await th.host.keys.revoke(acme, id)
  const started2 = Date.now()
  let afterKeyRevoke = await remote()
  while (afterKeyRevoke !== 401 && Date.now() - started2 < 1000) afterKeyRevoke = await remote()
  t.equal(afterKeyRevoke, 401, 'a revoked key stops working on the second instance within a second')
  other.child.kill('SIGTERM')
  const { stdout, stderr } = await other.exit
  t.match(stdout, /authentication failed/, 'the second instance logged the refusal')
  t.notOk(secrets.some((s) => (stdout + stderr).includes(s)), 'no key in the second instance log')
})

t.test('a grant made elsewhere works on the very next request, before any change notice; a 403 names what is missing', async (t) => {
  const { key, id } = await issue('acme', 'late-grant')
  await th.host.roles.create(acme, 'late')
  await th.host.roles.assign(acme, 'late', `key:${id}`)
  const refused = await items(bearer(key))
  const body = assertProblem(t, refused, 403, 'FORBIDDEN')
  t.match(body.detail, 'inventory.items.read', 'the problem names the permission the route needs')
  // Written as another instance would, without telling this one: only the re-check can see it.
  await th.host.pool.query(
    `INSERT INTO t_acme.plinth_role_grant (role_id, permission) SELECT id, 'inventory.items.read' FROM t_acme.plinth_role WHERE name = 'late'`,
  )
  t.equal((await items(bearer(key))).statusCode, 200, 'the refusal was checked again against the database')
})

t.test('a key of tenant A never reaches tenant B, through any example-module route', async (t) => {
  await th.host.roles.create(acme, 'all')
  await th.host.roles.grant(acme, 'all', '*')
  const { key } = await issue('acme', 'everything', ['all'])
  const countB = async () => {
    const { rows } = await th.host.pool.query(
      `SELECT (SELECT count(*) FROM t_beta.items)::int AS items, (SELECT count(*) FROM t_beta.tickets)::int AS tickets`,
    )
    return rows[0]
  }
  await th.host.withTenantTx(beta.id, (db) => db.$client.query(`INSERT INTO items (name) VALUES ('beta secret')`))
  const before = await countB()
  const routes = th.host.modules.flatMap((m) => m.routes.map((r) => ({ module: m.id, ...r })))
  t.ok(routes.length >= 9, `${routes.length} routes`)
  for (const route of routes) {
    const url = `/api/plugins/${route.module}${route.path.replace(':id', '1')}`
    for (const [label, headers, expected] of [
      ['x-tenant: beta', { 'x-tenant': 'beta' }, 'TENANT_MISMATCH'],
      ["beta's Host", { host: 'beta.example.com' }, 'TENANT_MISMATCH'],
    ] as const) {
      const res = await th.app.inject({ method: route.method, url, headers: { ...bearer(key), ...headers }, payload: route.method === 'GET' || route.method === 'DELETE' ? undefined : {} })
      t.equal(res.json().error, expected, `${route.method} ${url} with ${label}`)
    }
  }
  t.same(await countB(), before, "nothing of B's was written")
  const own = await items(bearer(key))
  t.equal(own.statusCode, 200, 'no header: the key works on its own tenant')
  t.equal((await items({ ...bearer(key), host: 'acme.example.com', 'x-tenant': 'acme' })).statusCode, 200, "with its own tenant's Host and x-tenant too")
  t.notOk(own.json().items.some((i: any) => i.name === 'beta secret'), "and sees nothing of B's")
})

t.test('JWTs: a valid one works; every forged or unfit one is a plain 401', async (t) => {
  const sign = (claims: Record<string, unknown>, options: { exp?: string | number; nbf?: string | number } = {}) => {
    const jwt = new SignJWT({ tenant: 'acme', ...claims }).setProtectedHeader({ alg: 'RS256' }).setSubject('alice').setIssuer('https://idp.example.com').setAudience('plinth').setIssuedAt()
    if (options.exp !== undefined) jwt.setExpirationTime(options.exp)
    else jwt.setExpirationTime('5m')
    if (options.nbf !== undefined) jwt.setNotBefore(options.nbf)
    return jwt.sign(privateKey)
  }
  await th.host.roles.create(acme, 'viewer')
  await th.host.roles.grant(acme, 'viewer', 'inventory.items.read')
  await th.host.roles.assign(acme, 'viewer', 'user:alice')
  const valid = await sign({})
  secrets.push(valid)
  t.equal((await items(bearer(valid))).statusCode, 200, 'a valid token, its subject holding a role')
  const me = await th.app.inject({ url: '/api/me', headers: bearer(valid) })
  t.match(me.json(), { principal: { id: 'user:alice', kind: 'user' }, tenant: { code: 'acme' }, permissions: ['inventory.items.read'] })

  const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url')
  const [h, p, s] = valid.split('.')
  const payload = JSON.parse(Buffer.from(p, 'base64url').toString())
  const forged: Record<string, string> = {
    expired: await sign({}, { exp: Math.floor(Date.now() / 1000) - 60 }),
    'not yet valid': await sign({}, { nbf: Math.floor(Date.now() / 1000) + 600 }),
    'wrong issuer': await new SignJWT({ tenant: 'acme' }).setProtectedHeader({ alg: 'RS256' }).setSubject('alice').setIssuer('https://evil.example.com').setAudience('plinth').setExpirationTime('5m').sign(privateKey),
    'wrong audience': await new SignJWT({ tenant: 'acme' }).setProtectedHeader({ alg: 'RS256' }).setSubject('alice').setIssuer('https://idp.example.com').setAudience('other').setExpirationTime('5m').sign(privateKey),
    'alg none': `${b64({ alg: 'none', typ: 'JWT' })}.${p}.`,
    'HS256 signed with the RS public key': await new SignJWT({ tenant: 'acme' }).setProtectedHeader({ alg: 'HS256' }).setSubject('alice').setIssuer('https://idp.example.com').setAudience('plinth').setExpirationTime('5m').sign(new TextEncoder().encode(publicPem)),
    'missing tenant claim': await new SignJWT({}).setProtectedHeader({ alg: 'RS256' }).setSubject('alice').setIssuer('https://idp.example.com').setAudience('plinth').setExpirationTime('5m').sign(privateKey),
    'tampered payload': `${h}.${b64({ ...payload, sub: 'mallory' })}.${s}`,
    'unknown tenant': await sign({ tenant: 'nobody' }),
  }
  for (const [label, token] of Object.entries(forged)) {
    secrets.push(token)
    const res = await items(bearer(token))
    assertProblem(t, res, 401, 'UNAUTHORIZED')
    t.equal(res.json().detail, 'A valid credential is required.', `${label}: the response says only 401`)
  }
  const failures = th.logs.filter((l) => l.msg === 'authentication failed')
  for (const reason of ['expired', 'not yet valid', 'wrong issuer', 'wrong audience', 'bad signature', 'missing claim', 'token names an unknown tenant']) {
    t.ok(failures.some((l) => l.reason === reason && l.level === 40), `logged at warn: ${reason}`)
  }
})

t.test('revoked, unknown, malformed keys: 401', async (t) => {
  const { key, id } = await issue('acme', 'short-lived', ['admin'])
  t.equal((await items(bearer(key))).statusCode, 200)
  await th.host.keys.revoke(acme, id)
  assertProblem(t, await items(bearer(key)), 401, 'UNAUTHORIZED')
  const unknown = 'plk_aaaaaaaaaaaa_' + 'A'.repeat(43)
  assertProblem(t, await items(bearer(unknown)), 401, 'UNAUTHORIZED')
  const wrongSecret = key.slice(0, -4) + 'AAAA'
  assertProblem(t, await items(bearer(wrongSecret)), 401, 'UNAUTHORIZED')
  assertProblem(t, await items({ authorization: 'Basic dXNlcjpwYXNz' }), 401, 'UNAUTHORIZED')
  assertProblem(t, await items(bearer('neither-a-key-nor-a-jwt')), 401, 'UNAUTHORIZED')
  assertProblem(t, await items(bearer('plk_short')), 401, 'UNAUTHORIZED')
  const reasons = th.logs.filter((l) => l.msg === 'authentication failed').map((l) => l.reason)
  for (const reason of ['revoked key', 'unknown key', 'bad key secret', 'not a Bearer credential', 'unrecognised credential', 'malformed key']) {
    t.ok(reasons.includes(reason), `the log says why: ${reason}`)
  }
})

t.test('pattern grants, and grants that give nothing', async (t) => {
  const cases: [string, string[], string[]][] = [
    ['inventory.*', ['inventory.items.read', 'inventory.items.create', 'inventory.items.update', 'inventory.items.delete'], []],
    ['inventory.items.*', ['inventory.items.read', 'inventory.items.create', 'inventory.items.update', 'inventory.items.delete'], []],
    ['tickets.tickets.*', ['tickets.tickets.read', 'tickets.tickets.write', 'tickets.tickets.close'], []],
    ['inventory.items.read', ['inventory.items.read'], []],
    ['nothing.here.read', [], ['nothing.here.read']],
    ['inventory.widgets.*', [], ['inventory.widgets.*']],
  ]
  for (const [grant, expected, unknown] of cases) {
    const role = `r-${cases.findIndex((c) => c[0] === grant)}`
    await th.host.roles.create(acme, role)
    await th.host.roles.grant(acme, role, grant)
    const { key } = await issue('acme', `pattern-${role}`, [role])
    const me = await th.app.inject({ url: '/api/me', headers: bearer(key) })
    t.same(me.json().permissions, [...expected].sort(), `${grant} gives ${expected.length} permission(s)`)
    const listed = (await th.host.roles.list(acme)).find((r) => r.name === role)!
    t.same(listed.unknownGrants, unknown, `${grant} reported as giving nothing: ${unknown.length > 0}`)
  }
  const admin = await th.app.inject({ url: '/api/admin/tenants/acme/roles', headers: bearer(TEST_ADMIN_TOKEN) })
  t.same(admin.json().roles.find((r: any) => r.name === 'r-4').unknownGrants, ['nothing.here.read'], 'the admin API reports them')
  const bad = await th.app.inject({ method: 'PUT', url: '/api/admin/tenants/acme/roles/r-0/grants/inventory', headers: bearer(TEST_ADMIN_TOKEN) })
  assertProblem(t, bad, 400, 'VALIDATION_FAILED')
})

t.test('/api/nav filters by permission and by module enablement', async (t) => {
  await th.host.roles.create(acme, 'nav')
  await th.host.roles.grant(acme, 'nav', 'inventory.items.read')
  await th.host.roles.grant(acme, 'nav', 'tickets.tickets.read')
  const { key } = await issue('acme', 'nav-user', ['nav'])
  const nav = async () => (await th.app.inject({ url: '/api/nav', headers: bearer(key) })).json()
  t.same(await nav(), {
    modules: [
      { id: 'inventory', name: 'Inventory', basePath: '/app/inventory', items: [{ path: '/app/inventory/items', label: 'Items' }] },
      { id: 'tickets', name: 'Support tickets', basePath: '/app/tickets', items: [{ path: '/app/tickets', label: 'Tickets' }] },
    ],
  })
  await th.host.disableModule('acme', 'inventory')
  t.same((await nav()).modules.map((m: any) => m.id), ['tickets'], 'a disabled module is not in the nav')
  await th.host.enableModule('acme', 'inventory')
  assertProblem(t, await th.app.inject({ url: '/api/nav', headers: { 'x-tenant': 'acme' } }), 401, 'UNAUTHORIZED')
})

t.test("a suspended tenant's credentials stop working at once", async (t) => {
  const { key } = await issue('beta', 'beta-admin', ['admin'])
  t.equal((await th.app.inject({ url: '/api/plugins/inventory/items', headers: bearer(key) })).statusCode, 200)
  await th.host.tenants.suspend('beta')
  assertProblem(t, await th.app.inject({ url: '/api/plugins/inventory/items', headers: bearer(key) }), 403, 'TENANT_SUSPENDED')
  await th.host.tenants.resume('beta')
})

t.test('a warm request with a key costs no round trip for the key or the permissions', async (t) => {
  const { key } = await issue('acme', 'warm', ['admin'])
  // The change feed reads back this instance's own change (the key's role) and drops the cached
  // permissions once more: warm up after a read that began after the key was made.
  const madeAt = Date.now()
  while (Date.now() - th.host.changes.status().lagMs <= madeAt + 5) await new Promise((r) => setTimeout(r, 20))
  t.equal((await items(bearer(key))).statusCode, 200)
  const work = await countDatabaseWork(async () => {
    for (let i = 0; i < 10; i++) t.equal((await items(bearer(key))).statusCode, 200)
  })
  // inventory's list: BEGIN and the settings travel with its SELECT; COMMIT is the second trip.
  t.equal(work.roundTrips, 20, 'two round trips a request: none for the key, the tenant or the permissions')
})

t.test('a credential in a URL query never reaches the request line', async (t) => {
  const { key } = await issue('acme', 'in-query', ['admin'])
  const res = await th.app.inject({ url: `/api/plugins/inventory/items?limit=5&token=${key}&api_key=${key}`, headers: bearer(key) })
  const line = th.logs.find((l) => l.reqId === res.headers['x-request-id'] && l.msg === 'request completed')
  t.equal(line?.url, '/api/plugins/inventory/items?limit=5&token=[redacted]&api_key=[redacted]')
})

t.test('the request line names the principal; no key, token or hash in any log line', async (t) => {
  const { key, id } = await issue('acme', 'logged', ['admin'])
  const res = await items(bearer(key))
  const line = th.logs.find((l) => l.reqId === res.headers['x-request-id'] && l.msg === 'request completed')
  t.match(line, { principal: { id: `key:${id}`, kind: 'key' }, tenant: 'acme', module: 'inventory', status: 200 })
  const { rows } = await th.host.pool.query('SELECT secret_hash FROM public.sys_api_key')
  const raw = th.rawLogs()
  const leaked = [...secrets, ...rows.map((r) => r.secret_hash), TEST_ADMIN_TOKEN].filter((s) => raw.includes(s))
  t.same(leaked, [], `none of ${secrets.length + rows.length + 1} secrets in ${th.logs.length} log lines`)
})
