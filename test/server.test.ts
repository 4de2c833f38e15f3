// The host as operators run it: a real process, configured by its environment, stopped by signal.
import net from 'node:net'
import path from 'node:path'
import t from 'tap'
import { createTestDatabase } from '../src/testing/database.ts'
import { PROJECT_ROOT } from '../src/app/paths.ts'
import { TEST_ADMIN_TOKEN } from '../src/testing/host.ts'
import { runtimeNotice } from '../src/platform/runtime.ts'
import { buildOnce } from './helpers/build.ts'
import { runTs, startServer } from './helpers/process.ts'
import { postgresPassOnly } from './helpers/passes.ts'

const admin = { authorization: `Bearer ${TEST_ADMIN_TOKEN}`, 'content-type': 'application/json' }

t.test('bad configuration exits 1 with a message naming the variable, and no secret', postgresPassOnly, async (t) => {
  const cases: [Record<string, string>, RegExp][] = [
    [{ PORT: 'abc' }, /PORT must be a whole number/],
    [{ DB_POOL_MAX: '0' }, /DB_POOL_MAX must be a whole number from 1/],
    [{ LOG_LEVEL: 'loud' }, /LOG_LEVEL must be one of/],
    [{ PLINTH_ADMIN_TOKEN: 'short' }, /PLINTH_ADMIN_TOKEN must be at least 24 characters/],
    [{ CORS_ORIGINS: 'not a url' }, /CORS_ORIGINS must list origins/],
    [{ DATABASE_URL: 'mysql://root:hunter2-secret@db/app' }, /DATABASE_URL must be a postgres:\/\//],
    [{ PLINTH_PLUGINS: 'inventory', PLINTH_MODULES: 'tickets' }, /PLINTH_PLUGINS and PLINTH_MODULES are the same setting and differ: set PLINTH_MODULES only/],
  ]
  await Promise.all(
    cases.map(async ([env, message]) => {
      const result = await runTs('src/main.ts', [], { PLINTH_DATA_DIR: '/nonexistent/never-opened', ...env })
      t.equal(result.code, 1, `${Object.keys(env)[0]} exits 1`)
      t.match(result.stderr, message)
      t.notMatch(result.stderr + result.stdout, /hunter2-secret/)
    }),
  )
})

t.test('SIGTERM lets the request in flight finish, then exits 0; committed data survives a restart', async (t) => {
  const database = await createTestDatabase()
  t.teardown(database.drop)
  const env = { ...database.env, PLINTH_ADMIN_TOKEN: TEST_ADMIN_TOKEN, PLINTH_SHUTDOWN_TIMEOUT_MS: '5000' }
  const first = await startServer(env)
  const created = await fetch(`${first.url}/api/admin/tenants`, {
    method: 'POST',
    headers: admin,
    body: JSON.stringify({ code: 'acme', name: 'Acme' }),
  })
  t.equal(created.status, 201)

  const inFlight = fetch(`${first.url}/hold?ms=1200`, { headers: { 'x-tenant': 'acme' } })
  await new Promise((r) => setTimeout(r, 300))
  first.child.kill('SIGTERM')
  const response = await inFlight
  t.equal(response.status, 200, 'the request in flight completed')
  t.same(await response.json(), { held: 1200 })
  t.equal(response.headers.get('connection'), 'close', 'and closed its connection after it')
  const exit = await first.exit
  t.equal(exit.code, 0, 'exit 0')
  t.match(first.output(), /shutting down: draining requests[\s\S]*stopped/)

  const second = await startServer(env)
  const list = await fetch(`${second.url}/api/admin/tenants`, { headers: admin })
  t.same((await list.json()).tenants.map((x: any) => x.code), ['acme'], 'the tenant committed before the stop is there')
  second.child.kill('SIGINT')
  t.equal((await second.exit).code, 0)
})

t.test('draining starts no request: one pipelined behind a request in flight is not read, an idle keep-alive connection is closed', postgresPassOnly, async (t) => {
  const database = await createTestDatabase()
  t.teardown(database.drop)
  const server = await startServer({ ...database.env, PLINTH_ADMIN_TOKEN: TEST_ADMIN_TOKEN, PLINTH_SHUTDOWN_TIMEOUT_MS: '5000' })
  t.equal((await fetch(`${server.url}/api/admin/tenants`, { method: 'POST', headers: admin, body: JSON.stringify({ code: 'acme', name: 'Acme' }) })).status, 201)
  const { hostname, port } = new URL(server.url)
  const connect = () => new Promise<net.Socket>((resolve) => { const s = net.connect(Number(port), hostname, () => resolve(s)) })
  const read = (socket: net.Socket) => {
    let data = ''
    socket.on('data', (d) => (data += d))
    return new Promise<string>((resolve) => socket.on('close', () => resolve(data)))
  }
  // An idle keep-alive connection that served one request.
  const idle = await connect()
  const idleData = read(idle)
  idle.write('GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n')
  // A request in flight with a second one pipelined behind it.
  const busy = await connect()
  const busyData = read(busy)
  busy.write('GET /hold?ms=1200 HTTP/1.1\r\nHost: x\r\nx-tenant: acme\r\n\r\nGET /health/live HTTP/1.1\r\nHost: x\r\n\r\n')
  await new Promise((r) => setTimeout(r, 300))
  server.child.kill('SIGTERM')
  const signalled = Date.now()
  const idleOut = await idleData
  t.ok(Date.now() - signalled < 1000, 'the idle connection closes at once, not when its keep-alive runs out')
  t.equal(idleOut.match(/^HTTP\/1\.1 /gm)?.length, 1, 'after its one response')
  const pipelined = await busyData
  t.equal(pipelined.match(/^HTTP\/1\.1 /gm)?.length, 1, 'one response on the busy connection: the pipelined request never started')
  t.match(pipelined, /^HTTP\/1\.1 200 [\s\S]*connection: close[\s\S]*\{"held":1200\}/i)
  t.equal((await server.exit).code, 0)
})

t.test('PLINTH_SHUTDOWN_TIMEOUT_MS cuts a request that outlasts it', postgresPassOnly, async (t) => {
  const database = await createTestDatabase()
  t.teardown(database.drop)
  const server = await startServer({ ...database.env, PLINTH_ADMIN_TOKEN: TEST_ADMIN_TOKEN, PLINTH_SHUTDOWN_TIMEOUT_MS: '500' })
  const created = await fetch(`${server.url}/api/admin/tenants`, { method: 'POST', headers: admin, body: JSON.stringify({ code: 'acme', name: 'Acme' }) })
  t.equal(created.status, 201)
  const long = fetch(`${server.url}/hold?ms=10000`, { headers: { 'x-tenant': 'acme' } }).then(
    (r) => r.status,
    () => 'cut',
  )
  await new Promise((r) => setTimeout(r, 300))
  const signalled = Date.now()
  server.child.kill('SIGTERM')
  const exit = await server.exit
  const took = Date.now() - signalled
  t.ok(took < 3000, `the process exited ${took} ms after SIGTERM, not after the 10 s request`)
  t.not(exit.code, 0, 'a shutdown that had to cut a request does not report success')
  t.equal(await long, 'cut', 'the request was cut')
})

t.test('the built host (npm run build, then node dist/main.js) runs compiled modules and TypeScript ones', async (t) => {
  const build = await buildOnce()
  t.equal(build.code, 0, `the build succeeds ${build.stderr}`)
  const database = await createTestDatabase()
  t.teardown(database.drop)
  const env = { ...database.env, PLINTH_ADMIN_TOKEN: TEST_ADMIN_TOKEN, PLINTH_MODULE_DIRS: path.join(PROJECT_ROOT, 'test/fixtures/modules'), PLINTH_MODULES: 'inventory,express' }
  const server = await startServer(env, 'dist/main.js')
  t.teardown(() => server.child.kill('SIGKILL'))

  const plugins = await (await fetch(`${server.url}/api/plugins`, { headers: admin })).json()
  t.same(
    plugins.plugins.map((p: any) => [p.id, p.status]).sort(),
    [
      ['express', 'loaded'],
      ['inventory', 'loaded'],
    ],
    'the compiled built-in module and the TypeScript one from PLINTH_MODULE_DIRS both load',
  )
  t.equal((await fetch(`${server.url}/api/admin/tenants`, { method: 'POST', headers: admin, body: JSON.stringify({ code: 'acme', name: 'Acme' }) })).status, 201)
  const tenant = { ...admin, 'x-tenant': 'acme' }
  const item = await fetch(`${server.url}/api/plugins/inventory/items`, { method: 'POST', headers: tenant, body: JSON.stringify({ name: 'Built' }) })
  t.equal(item.status, 201, "the compiled module's migrations were applied to the new tenant")
  t.equal((await fetch(`${server.url}/api/admin/tenants/acme/modules/express/enable`, { method: 'POST', headers: { authorization: admin.authorization } })).status, 200)
  const listed = await fetch(`${server.url}/api/admin/tenants/acme/modules`, { headers: admin })
  t.match((await listed.json()).modules.find((m: any) => m.id === 'express'), { enabled: true, status: 'ready' })
  const old = await fetch(`${server.url}/api/admin/tenants/acme/plugins`, { headers: admin })
  t.equal(old.headers.get('deprecation'), 'true', 'the old admin path answers, flagged deprecated')
  t.match((await old.json()).plugins.find((m: any) => m.id === 'express'), { enabled: true, status: 'ready' })
  const things = await fetch(`${server.url}/api/plugins/express/things`, { headers: tenant })
  t.equal(things.status, 200)
  t.match(await things.json(), { tenant: 'acme' })

  const pastEndOfLife = Number(process.versions.node.split('.')[0]) < 22
  const notices = server.output().split('\n').filter((line) => line.includes('past its end of life'))
  t.equal(notices.length, pastEndOfLife ? 1 : 0, `on Node ${process.versions.node} the start ${pastEndOfLife ? 'says once' : 'does not say'} that its Node is past its end of life`)

  server.child.kill('SIGTERM')
  t.equal((await server.exit).code, 0, 'and it stops cleanly')
})

t.test('which Node versions the start warns about: those past their end of life, not 22 or 24', async (t) => {
  t.match(runtimeNotice('20.12.0'), /^Node 20\.12\.0 is past its end of life .*run plinth on Node 24 LTS$/)
  t.equal(runtimeNotice('22.18.0'), undefined)
  t.equal(runtimeNotice('24.22.3'), undefined)
})
