// Modules written the seed's way, by someone else, kept in their own folder outside the project
// with no package.json: Express habits, and all their database work through ctx.withTenantTx.
// They load on the built host and the dev host, answer as Express would, never take a second
// database connection, and no module's mistake stops the host.
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { sql } from 'drizzle-orm'
import t, { type Test } from 'tap'
import { PROJECT_ROOT } from '../src/app/paths.ts'
import { countDatabaseWork } from './helpers/count-database-work.ts'
import { createTestDatabase } from '../src/testing/database.ts'
import { startTestHost, TEST_ADMIN_TOKEN, type TestHost } from '../src/testing/host.ts'
import { buildOnce } from './helpers/build.ts'
import { assertProblem } from './helpers/problem.ts'
import { startServer } from './helpers/process.ts'
import { postgresPassOnly } from './helpers/passes.ts'

const STRANGER = path.join(PROJECT_ROOT, 'test/fixtures/stranger')
const FIXTURES = path.join(PROJECT_ROOT, 'test/fixtures/modules')
const admin = { authorization: `Bearer ${TEST_ADMIN_TOKEN}` }
type Teardown = { teardown(fn: () => unknown): void }

/** A folder outside the project holding the bookings module, as its author's repository would. */
async function outsideFolder(t: Teardown, extras = true): Promise<string> {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'plinth-outside-'))
  t.teardown(() => fs.rm(root, { recursive: true, force: true }))
  await fs.cp(path.join(STRANGER, 'bookings'), path.join(root, 'bookings'), { recursive: true })
  if (extras) {
    // What a module repository keeps beside its modules: none of it is a module.
    for (const dir of ['.git', '.github/workflows', 'docs', 'node_modules/left-pad']) await fs.mkdir(path.join(root, dir), { recursive: true })
    await fs.writeFile(path.join(root, 'docs/README.md'), '# bookings\n')
    await fs.writeFile(path.join(root, 'node_modules/left-pad/index.js'), 'module.exports = (s) => s\n')
  }
  return root
}

type Call = (method: string, url: string, init?: { headers?: Record<string, string>; body?: unknown }) => Promise<Response>

/** What a caller of the bookings module sees, whichever host serves it. */
async function exerciseBookings(t: Test, call: Call) {
  const health = await call('GET', '/health', { headers: { authorization: '' } })
  t.equal(health.status, 200, "the module's own /health is open")
  t.same(await health.json(), { ok: true, own: true }, 'and answers with its own body')

  const created = await call('POST', '/bookings', { body: { guest: 'Ada', nights: 3 } })
  t.equal(created.status, 201)
  const booking = await created.json()
  t.match(booking, { id: Number, guest: 'Ada', nights: 3 })
  t.equal(created.headers.get('location'), `/api/plugins/bookings/bookings/${booking.id}`, 'res.location')
  t.equal(created.headers.get('x-module'), 'bookings', 'router.use() ran first, res.set({...}) set its headers')
  const invalid = await call('POST', '/bookings', { body: { guest: 'Bob', nights: 'many' } })
  t.equal(invalid.status, 400, "router.route().post(options, ...) validates with the route's schema")

  const list = await call('GET', '/bookings')
  t.same(await list.json(), { bookings: [{ id: booking.id, guest: 'Ada', nights: 3 }], stamp: 'stamped' }, 'res.locals carried from router.use')
  t.same(await (await call('GET', `/bookings/${booking.id}`)).json(), { id: booking.id, guest: 'Ada', nights: 3 }, 'router.param loaded it')
  const missing = await call('GET', '/bookings/999999')
  t.equal(missing.status, 404, 'router.param answered itself')
  const notNumber = await call('GET', '/bookings/abc')
  t.equal(notNumber.status, 400)
  t.equal(await notNumber.text(), 'Bad Request', 'res.sendStatus(400): the status text as the body')

  t.equal(await (await call('GET', '/pick/1')).text(), 'regular')
  t.equal(await (await call('GET', '/pick/0')).text(), 'special', "next('route') reached the second declaration of the path")
  t.equal(await (await call('GET', '/pick/1/')).text(), 'regular', 'a trailing slash matches, as in Express')

  const echo = await call('PUT', '/echo?x=1', { headers: { 'content-type': 'application/json', accept: 'text/html', 'user-agent': 'stranger/1', referer: 'https://ref.example/' }, body: {} })
  t.same(await echo.json(), {
    method: 'PUT',
    path: '/echo',
    baseUrl: '/api/plugins/bookings',
    originalUrl: '/api/plugins/bookings/echo?x=1',
    ips: [],
    isJson: 'application/json',
    accepts: 'html',
    agent: 'stranger/1',
    referrer: 'https://ref.example/',
    xhr: false,
    secure: false,
  })
  t.equal((await call('DELETE', '/echo')).status, 200, 'router.all answers every method')
  const mounted = await call('GET', '/admin/stats')
  t.equal(mounted.headers.get('x-admin-mount'), '/api/plugins/bookings/admin /stats', "inside router.use('/admin'): baseUrl and path as Express sets them")
  t.same(await mounted.json(), { baseUrl: '/api/plugins/bookings', path: '/admin/stats' })

  const redirect = await call('GET', '/redirect', { headers: { accept: 'text/plain' } })
  t.equal(redirect.status, 302)
  t.equal(redirect.headers.get('location'), '/api/plugins/bookings/bookings')
  t.equal(await redirect.text(), 'Found. Redirecting to /api/plugins/bookings/bookings')
  const moved = await call('GET', '/moved', { headers: { accept: 'text/html' } })
  t.equal(moved.status, 301)
  t.equal(moved.headers.get('location'), 'https://example.com/new%20place', 'the location is encoded')
  t.equal(await moved.text(), '<!DOCTYPE html><head><title>Moved Permanently</title></head><body><p>Moved Permanently. Redirecting to https://example.com/new%20place</p></body>')

  const status = await call('GET', '/status')
  t.equal(status.status, 202)
  t.equal(await status.text(), 'Accepted')
  t.match(status.headers.get('content-type'), /^text\/plain; charset=utf-8/)
  const text = await call('GET', '/text')
  t.match(text.headers.get('content-type'), /^text\/plain; charset=utf-8/, "res.type('text')")
  t.equal(await text.text(), 'plain words')
  const html = await call('GET', '/html')
  t.match(html.headers.get('content-type'), /^text\/html; charset=utf-8/, 'res.send(string) is HTML, as in Express')
  t.equal(await (await call('GET', '/end')).text(), 'ended', 'res.end(body) sends the body')
  const nothing = await call('GET', '/nothing')
  t.equal(nothing.status, 204)
  t.equal(await nothing.text(), '')

  const cookies = (await call('GET', '/cookie')).headers.getSetCookie()
  t.equal(cookies.length, 3)
  t.match(cookies[0], /^seen=yes; Max-Age=60; Path=\/; Expires=.+; HttpOnly$/)
  t.equal(cookies[1], 'prefs=j%3A%7B%22theme%22%3A%22dark%22%7D; Path=/')
  t.equal(cookies[2], 'old=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT')

  const report = await call('GET', '/report')
  t.equal(report.headers.get('content-disposition'), 'attachment; filename=summary.csv')
  t.match(report.headers.get('content-type'), /^text\/csv/)
  t.equal(await report.text(), 'a,b\n1,2\n')

  const headers = await call('GET', '/headers')
  t.equal(headers.headers.get('x-list'), 'a, b', 'res.append')
  t.equal(headers.headers.get('vary'), 'Accept-Language')
  t.same(await headers.json(), { one: '1', sent: false }, 'res.get, res.headersSent')

  t.equal(await (await call('GET', '/format', { headers: { accept: 'text/plain' } })).text(), 'as text')
  t.same(await (await call('GET', '/format', { headers: { accept: 'application/json' } })).json(), { as: 'json' })
  const refused = await call('GET', '/strict-format', { headers: { accept: 'image/png' } })
  t.equal(refused.status, 406, 'res.format with nothing acceptable: 406')
  t.equal((await refused.json()).error, 'NOT_ACCEPTABLE')

  const failed = await call('GET', '/fail')
  t.equal(failed.status, 500)
  t.same(await failed.json(), { caught: 'database password is ***' }, "next(err) reached the module's error handler")
  const teapot = await call('GET', '/teapot')
  t.equal(teapot.status, 418, 'an error with a status, and no error handler of its own: that status')
  t.equal((await teapot.json()).detail, 'short and stout')

  t.same(await (await call('GET', '/tenants')).json(), ['acme'], 'ctx.tenants(): the tenants that have the module')
}

for (const [label, file] of [
  ['the built host (node dist/main.js)', 'dist/main.js'],
  ['the dev host (tsx src/main.ts)', 'src/main.ts'],
] as const) {
  t.test(`a stranger's module from a folder outside the project, on ${label}`, async (t) => {
    if (file.endsWith('.js')) {
      const build = await buildOnce()
      t.equal(build.code, 0, `the build succeeds ${build.stderr}`)
    }
    const root = await outsideFolder(t)
    const database = await createTestDatabase()
    t.teardown(database.drop)
    // Strict: anything in that folder that is not a module, or any module problem, would stop it.
    const env = { ...database.env, PLINTH_ADMIN_TOKEN: TEST_ADMIN_TOKEN, PLINTH_MODULE_DIRS: root, PLINTH_STRICT_MODULES: '1', PLINTH_DEFAULT_MODULES: 'bookings' }
    const server = await startServer(env, file)
    t.teardown(() => server.child.kill('SIGKILL'))
    const json = { ...admin, 'content-type': 'application/json' }
    const plugins = await (await fetch(`${server.url}/api/plugins`, { headers: admin })).json()
    t.same(
      plugins.plugins.filter((p: any) => !['inventory', 'tickets'].includes(p.id)).map((p: any) => [p.id, p.status]),
      [['bookings', 'loaded']],
      'the module loads; .git, .github, docs and node_modules are not modules',
    )
    for (const code of ['acme', 'beta']) {
      t.equal((await fetch(`${server.url}/api/admin/tenants`, { method: 'POST', headers: json, body: JSON.stringify({ code, name: code }) })).status, 201)
    }
    t.equal((await fetch(`${server.url}/api/admin/tenants/beta/modules/bookings/disable`, { method: 'POST', headers: admin })).status, 200)
    const key = await (await fetch(`${server.url}/api/admin/tenants/acme/keys`, { method: 'POST', headers: json, body: JSON.stringify({ name: 'stranger', roles: ['admin'] }) })).json()
    const call: Call = (method, url, init = {}) =>
      fetch(`${server.url}/api/plugins/bookings${url}`, {
        method,
        redirect: 'manual',
        headers: { authorization: `Bearer ${key.key}`, ...(init.body === undefined ? {} : { 'content-type': 'application/json' }), ...init.headers },
        body: init.body === undefined ? undefined : JSON.stringify(init.body),
      })
    await exerciseBookings(t, call)
    server.child.kill('SIGTERM')
    t.equal((await server.exit).code, 0)
  })
}

/** A host with the bookings module from an outside folder, tenants acme and beta, and a caller of acme. */
async function bookingsHost(t: Teardown, env: Record<string, string> = {}) {
  const root = await outsideFolder(t, false)
  const th = await startTestHost({ env: { PLINTH_MODULE_DIRS: root, PLINTH_MODULES: 'bookings', ...env } })
  t.teardown(th.close)
  await th.createTenant('acme')
  await th.createTenant('beta')
  const { key } = await th.host.createKey('acme', 'stranger', ['admin'])
  const inject = (method: 'GET' | 'POST', url: string, payload?: object | object[]) =>
    th.app.inject({ method, url: `/api/plugins/bookings${url}`, headers: { authorization: `Bearer ${key}` }, ...(payload ? { payload } : {}) })
  return { th, inject }
}

const guests = async (th: TestHost, schema: string) =>
  (await th.host.pool.query(`SELECT guest FROM ${schema}.bookings ORDER BY id`)).rows.map((r: { guest: string }) => r.guest)

const poolIsIdle = (pool: { totalCount: number; idleCount: number; waitingCount: number }) => pool.waitingCount === 0 && pool.idleCount === pool.totalCount

/** Whether the pool is idle within `ms`: a client goes back a moment after its response. */
async function settles(pool: Parameters<typeof poolIsIdle>[0], ms = 2000) {
  const deadline = Date.now() + ms
  while (!poolIsIdle(pool) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
  return poolIsIdle(pool)
}

for (const poolMax of ['1', '10']) {
  t.test(`50 concurrent withTenantTx requests with DB_POOL_MAX=${poolMax}: no error, no second connection`, async (t) => {
    const { th, inject } = await bookingsHost(t, { DB_POOL_MAX: poolMax })
    t.equal((await inject('POST', '/bookings', { guest: 'Ada', nights: 2 })).statusCode, 201)
    let mostHeld = 0
    const watch = setInterval(() => (mostHeld = Math.max(mostHeld, th.host.tenantClientPool.totalCount - th.host.tenantClientPool.idleCount)), 1)
    const responses = await Promise.all(Array.from({ length: 50 }, () => inject('GET', '/bookings')))
    clearInterval(watch)
    t.same(
      responses.filter((r) => r.statusCode !== 200).map((r) => r.statusCode),
      [],
      'every request answered 200',
    )
    t.ok(responses.every((r) => r.json().bookings.length === 1))
    t.ok(mostHeld <= Number(poolMax), `never more clients held (${mostHeld}) than the pool has`)
    t.ok(await settles(th.host.tenantClientPool), 'the pool is idle after')
  })
}

t.test('withTenantTx inside a request is part of its transaction', async (t) => {
  const { th, inject } = await bookingsHost(t)

  const thrown = await inject('POST', '/twice-then-throw')
  assertProblem(t, thrown, 500, 'INTERNAL_ERROR')
  t.same(await guests(th, 't_acme'), [], 'two writes through withTenantTx, then a throw: 0 rows')

  const caught = await inject('POST', '/inner-caught')
  t.equal(caught.statusCode, 201)
  t.same(await guests(th, 't_acme'), ['outer-before', 'outer-after'], 'the inner part that threw and was caught is undone; the outer writes stay')

  await th.host.pool.query('DELETE FROM t_acme.bookings')
  const batch = await inject('POST', '/batch', [
    { guest: 'b1', nights: 1 },
    { guest: 'b2', nights: 0 },
    { guest: 'b3', nights: 2 },
    { guest: 'b4', nights: -1 },
    { guest: 'b5', nights: 3 },
  ])
  t.same(batch.json(), { created: 3, failed: 2 }, 'concurrent calls in one request: each its own piece')
  t.same(await guests(th, 't_acme'), ['b1', 'b3', 'b5'])
  await th.host.pool.query('DELETE FROM t_acme.bookings')
  t.equal((await inject('POST', '/nested')).statusCode, 201)
  t.same(await guests(th, 't_acme'), ['outer-1', 'inner', 'outer-2'], 'a call inside a call nests; the failed inner piece alone is undone')
  await th.host.pool.query('DELETE FROM t_acme.bookings')

  const sameTenantByCode = await inject('POST', '/cross?tenant=acme')
  t.equal(sameTenantByCode.statusCode, 201, "the request's own tenant by code joins too")
  await th.host.pool.query('DELETE FROM t_acme.bookings')

  const cross = await inject('POST', '/cross?tenant=beta')
  assertProblem(t, cross, 500, 'INTERNAL_ERROR')
  t.notMatch(cross.body, /beta|acme|withTenantTx/, 'the cause is not told to the caller')
  const logged = th.logs.find((l) => l.reqId === cross.headers['x-request-id'] && l.err)
  t.match(logged?.err?.message, /withTenantTx\("beta"\) was called while handling a request for tenant "acme"/, 'the log names both tenants')
  t.match(logged?.err, { type: 'CrossTenantError', message: /works in the request's tenant only \(use req\.tenant\.id\); nothing was run/ }, 'and what to do instead')
  const betaId = th.host.registry.byCode('beta')!.id
  const crossById = await inject('POST', `/cross?tenant=${betaId}`)
  assertProblem(t, crossById, 500, 'INTERNAL_ERROR')
  const loggedById = th.logs.find((l) => l.reqId === crossById.headers['x-request-id'] && l.err)
  t.match(loggedById?.err?.message, /withTenantTx\("beta"\) was called while handling a request for tenant "acme"/, 'asked by id, the log names the other tenant by its code')
  t.same(await guests(th, 't_acme'), [], "nothing written in the request's tenant")
  t.same(await guests(th, 't_beta'), [], 'nor in the other')
  t.ok(await settles(th.host.tenantClientPool))
})

t.test('a warm withTenantTx request costs the round trips of a req.db one', async (t) => {
  const { th, inject } = await bookingsHost(t)
  t.equal((await inject('POST', '/bookings', { guest: 'Ada', nights: 2 })).statusCode, 201)
  // The feed reading back this host's own changes (the tenants, the key) refreshes caches through
  // the pool: not the request's work.
  await th.host.changes.stop()
  for (let i = 0; i < 5; i++) await inject('GET', '/bookings')
  const counted = await countDatabaseWork(async () => {
    for (let i = 0; i < 20; i++) t.equal((await inject('GET', '/bookings')).statusCode, 200)
  })
  // BEGIN + SET and SAVEPOINT ride with the SELECT; COMMIT is the second.
  t.equal(counted.roundTrips, 40, '2 round trips a request, as with req.db')
})

t.test('withTenantTx outside a request, and after the response, runs in a transaction of its own', async (t) => {
  const { th, inject } = await bookingsHost(t)
  t.equal((await inject('POST', '/answer-then-write')).statusCode, 202)
  let after: string[] = []
  for (let i = 0; i < 50 && after.length === 0; i++) {
    await new Promise((resolve) => setTimeout(resolve, 20))
    after = (await guests(th, 't_acme')).filter((g) => g === 'after-answer')
  }
  t.same(after, ['after-answer'], 'the write a handler made after res.json() is kept')
  const bookings = th.host.modules.find((m) => m.id === 'bookings')!
  const ctx = bookings.ctx!
  t.same((await ctx.tenants()).map((x) => x.code), ['acme', 'beta'])
  await ctx.withTenantTx('beta', (db) => db.execute(sql`INSERT INTO bookings (guest, nights) VALUES ('background', 1)`))
  await t.rejects(
    ctx.withTenantTx('beta', async (db) => {
      await db.execute(sql`INSERT INTO bookings (guest, nights) VALUES ('lost', 1)`)
      throw new Error('job failed')
    }),
    /job failed/,
  )
  await t.rejects(ctx.withTenantTx('nobody', async () => 1), { name: 'UnknownTenantError', message: /no tenant has the id or code "nobody"/ })
  // A stranger's slip (req.tenant?.id where there is none): refused at once, without asking the
  // database. (The feed is stopped: on the embedded database it polls through the same pool.)
  await th.host.changes.stop()
  const slip = await countDatabaseWork(() => t.rejects(ctx.withTenantTx(undefined as unknown as string, async () => 1), { name: 'UnknownTenantError' }))
  t.equal(slip.statements, 0, 'no query for a tenant id that is not even a string')
  t.same(await guests(th, 't_beta'), ['background'])
})

t.test("one module's mistakes fail that module alone; the host serves the rest", async (t) => {
  const second = await outsideFolder(t, false)
  const th = await startTestHost({
    env: {
      PLINTH_MODULE_DIRS: `${FIXTURES},${second}`,
      PLINTH_MODULES: 'inventory,express,clash,twoschemas,badschema,sendfile,propfind,bookings',
    },
  })
  t.teardown(th.close)
  const byId = new Map<string, any[]>()
  for (const m of th.host.modules) byId.set(m.id, [...(byId.get(m.id) ?? []), m])
  t.match(byId.get('clash'), [{ status: 'failed', reason: /routes "\/rooms\/:id" and "\/rooms\/:roomId" match the same requests/ }])
  t.match(byId.get('twoschemas'), [{ status: 'failed', reason: /router\.post\("\/things"\) is declared more than once with options/ }])
  t.match(byId.get('badschema'), [{ status: 'failed', reason: /^mount: Failed building the validation schema for GET: \/api\/plugins\/badschema\/things/ }])
  t.match(byId.get('sendfile'), [{ status: 'loaded' }], 'an unsupported Express call is refused when it is made, not guessed from source text')
  t.match(byId.get('propfind'), [{ status: 'failed', reason: /router\.propfind is not supported by plinth's router/ }])
  t.match(byId.get('bookings'), [{ status: 'loaded' }], 'the only bookings is the one outside')
  t.equal(byId.get('express')![0].status, 'loaded')

  await th.createTenant('acme')
  const headers = { ...admin, 'x-tenant': 'acme' }
  t.equal((await th.app.inject({ url: '/api/plugins/inventory/items', headers })).statusCode, 200, 'the rest serve')
  t.equal((await th.app.inject({ url: '/api/plugins/bookings/bookings', headers })).statusCode, 200)
  for (const [url, call, instead] of [
    ['/logo', 'res.sendFile', 'res.type(...).send(buffer)'],
    ['/destructured', 'res.sendFile', 'res.type(...).send(buffer)'],
    ['/helper', 'res.download', 'res.attachment(name).send(buffer)'],
  ]) {
    const res = await th.app.inject({ url: `/api/plugins/sendfile${url}`, headers })
    assertProblem(t, res, 501, 'UNSUPPORTED_EXPRESS_CALL')
    t.match(res.json().detail, `${call} is not supported by plinth;`, `${url}: the call is named`)
    t.match(res.json().detail, instead, `${url}: and what to use instead`)
  }
  t.same((await th.app.inject({ url: '/api/plugins/sendfile/handled', headers })).json(), { handled: 'UNSUPPORTED_EXPRESS_CALL' }, "the module's error handler sees it first")
  // Each of those opened the request's transaction before its handler threw: all rolled back, every client back.
  const clients = th.host.tenantClientPool
  for (let waited = 0; clients.totalCount !== clients.idleCount && waited < 2000; waited += 20) await new Promise((r) => setTimeout(r, 20))
  t.equal(clients.totalCount - clients.idleCount, 0, 'no client is held after the 501s')
  for (const id of ['clash', 'twoschemas', 'badschema', 'propfind']) {
    assertProblem(t, await th.app.inject({ url: `/api/plugins/${id}/anything`, headers }), 503, 'MODULE_UNAVAILABLE')
    t.equal((await th.app.inject({ url: `/api/plugins/${id}/health` })).statusCode, 503)
  }
})

t.test('the same module id in two folders: the first serves, the second is refused', async (t) => {
  const first = await outsideFolder(t, false)
  const second = await outsideFolder(t, false)
  const th = await startTestHost({ env: { PLINTH_MODULE_DIRS: `${first},${second}`, PLINTH_MODULES: 'inventory,bookings' } })
  t.teardown(th.close)
  t.match(
    th.host.modules.filter((m) => m.id === 'bookings'),
    [
      { status: 'loaded', dir: path.join(first, 'bookings') },
      { status: 'refused', reason: /duplicate \(id\): another module with id "bookings" was found first/ },
    ],
  )
  t.same((await th.app.inject({ url: '/api/plugins/bookings/health' })).json(), { ok: true, own: true })
})

t.test('PLINTH_STRICT_MODULES=1 turns a module mistake into exit 1', postgresPassOnly, async (t) => {
  const database = await createTestDatabase()
  t.teardown(database.drop)
  const [first, second] = [await outsideFolder(t, false), await outsideFolder(t, false)]
  const cases: [Record<string, string>, RegExp][] = [
    [{ PLINTH_MODULE_DIRS: FIXTURES, PLINTH_MODULES: 'inventory,clash' }, /clash failed: register: routes .*\/rooms\/:roomId/],
    [{ PLINTH_MODULE_DIRS: `${first},${second}`, PLINTH_MODULES: 'bookings' }, /bookings refused: duplicate/],
  ]
  for (const [env, reason] of cases) {
    await t.rejects(startServer({ ...database.env, PLINTH_STRICT_MODULES: '1', ...env }), new RegExp(`exited \\(1\\) before listening[\\s\\S]*${reason.source}`))
  }
})
