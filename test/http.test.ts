// What every caller sees whatever the route: the one error shape, request ids, CORS, tenant
// resolution, health probes, and log lines that carry no secret.
import t from 'tap'
import { startTestHost, TEST_ADMIN_TOKEN } from '../src/testing/host.ts'
import { createNoteTable, noteRoutes } from './helpers/notes.ts'
import { assertProblem } from './helpers/problem.ts'

const th = await startTestHost({
  env: { CORS_ORIGINS: 'https://app.example.com', PLINTH_BODY_LIMIT_BYTES: '2048' },
  tenantRoutes: noteRoutes,
})
t.teardown(th.close)
const acme = await th.createTenant('acme', { domain: 'acme.example.com' })
const beta = await th.createTenant('beta', { domain: 'beta.example.com' })
await createNoteTable(th.host, acme.id)
await createNoteTable(th.host, beta.id)
const admin = { authorization: `Bearer ${TEST_ADMIN_TOKEN}` }

t.test('every error case answers in the one shape', async (t) => {
  const invalid = await th.app.inject({ method: 'POST', url: '/notes', headers: { 'x-tenant': 'acme' }, payload: { body: '' } })
  const body = assertProblem(t, invalid, 400, 'VALIDATION_FAILED')
  t.match(body.errors, [{ path: '/body/body', message: /\S/ }], 'the field that failed, with a message')
  t.equal(body.errors.length, 1)

  const malformed = await th.app.inject({
    method: 'POST',
    url: '/notes',
    headers: { 'x-tenant': 'acme', 'content-type': 'application/json' },
    payload: '{"body": ',
  })
  assertProblem(t, malformed, 400, 'MALFORMED_JSON')

  const media = await th.app.inject({
    method: 'POST',
    url: '/notes',
    headers: { 'x-tenant': 'acme', 'content-type': 'application/xml' },
    payload: '<note/>',
  })
  assertProblem(t, media, 415, 'UNSUPPORTED_MEDIA_TYPE')

  const large = await th.app.inject({
    method: 'POST',
    url: '/notes',
    headers: { 'x-tenant': 'acme' },
    payload: { body: 'x'.repeat(4096) },
  })
  assertProblem(t, large, 413, 'BODY_TOO_LARGE')

  const unknownRoute = await th.app.inject({ url: '/no/such/route' })
  t.equal(assertProblem(t, unknownRoute, 404, 'NOT_FOUND').instance, '/no/such/route')

  assertProblem(t, await th.app.inject({ url: '/notes' }), 400, 'TENANT_REQUIRED')
  assertProblem(t, await th.app.inject({ url: '/notes', headers: { 'x-tenant': 'nope' } }), 404, 'TENANT_NOT_FOUND')

  const failed = await th.app.inject({ method: 'POST', url: '/notes', headers: { 'x-tenant': 'acme' }, payload: { body: 'x', then: 'throw' } })
  const internal = assertProblem(t, failed, 500, 'INTERNAL_ERROR')
  t.notMatch(JSON.stringify(internal), /secret|Error:|\.ts:/)
})

t.test('a suspended tenant is refused at once, and served again on resume', async (t) => {
  const suspend = await th.app.inject({ method: 'POST', url: '/api/admin/tenants/beta/suspend', headers: admin })
  t.equal(suspend.statusCode, 200)
  t.equal(suspend.json().status, 'suspended')
  assertProblem(t, await th.app.inject({ url: '/notes', headers: { 'x-tenant': 'beta' } }), 403, 'TENANT_SUSPENDED')
  await th.app.inject({ method: 'POST', url: '/api/admin/tenants/beta/resume', headers: admin })
  t.equal((await th.app.inject({ url: '/notes', headers: { 'x-tenant': 'beta' } })).statusCode, 200)
})

t.test('the tenant comes from x-tenant or from the Host, and the two must agree', async (t) => {
  await th.app.inject({ method: 'POST', url: '/notes', headers: { 'x-tenant': 'acme' }, payload: { body: 'from-acme' } })
  const byHost = await th.app.inject({ url: '/notes', headers: { host: 'acme.example.com:8080' } })
  t.equal(byHost.statusCode, 200)
  t.ok(byHost.json().notes.some((n: any) => n.body === 'from-acme'))
  const byOtherHost = await th.app.inject({ url: '/notes', headers: { host: 'beta.example.com' } })
  t.notOk(byOtherHost.json().notes.some((n: any) => n.body === 'from-acme'), "beta's host sees none of acme's rows")
  assertProblem(t, await th.app.inject({ url: '/notes', headers: { host: 'beta.example.com', 'x-tenant': 'acme' } }), 403, 'TENANT_MISMATCH')
  t.equal((await th.app.inject({ url: '/notes', headers: { host: 'acme.example.com', 'x-tenant': 'acme' } })).statusCode, 200, 'both naming acme agree')
  assertProblem(t, await th.app.inject({ url: '/notes', headers: { host: 'unknown.example.com' } }), 400, 'TENANT_REQUIRED')
})

t.test('request ids: a safe incoming id is kept, anything else replaced', async (t) => {
  const kept = await th.app.inject({ url: '/health/live', headers: { 'x-request-id': 'trace-123.abc_DEF' } })
  t.equal(kept.headers['x-request-id'], 'trace-123.abc_DEF')
  for (const unsafe of ['a'.repeat(65), 'has space', 'inject"quote', 'new\\nline']) {
    const res = await th.app.inject({ url: '/health/live', headers: { 'x-request-id': unsafe } })
    t.match(res.headers['x-request-id'], /^[0-9a-f-]{36}$/, `replaced: ${unsafe.slice(0, 12)}`)
  }
  const problem = await th.app.inject({ url: '/nope', headers: { 'x-request-id': 'req-42' } })
  t.equal(problem.json().requestId, 'req-42', 'the error body names the same id')
})

t.test('CORS allows the configured origins with credentials, and no other', async (t) => {
  const allowed = await th.app.inject({
    method: 'OPTIONS',
    url: '/notes',
    headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST' },
  })
  t.equal(allowed.statusCode, 204)
  t.equal(allowed.headers['access-control-allow-origin'], 'https://app.example.com')
  t.equal(allowed.headers['access-control-allow-credentials'], 'true')
  const other = await th.app.inject({ url: '/health/live', headers: { origin: 'https://evil.example.com' } })
  t.equal(other.headers['access-control-allow-origin'], undefined)
})

t.test('health: live and ready', async (t) => {
  const live = await th.app.inject({ url: '/health/live' })
  t.same(live.json(), { ok: true })
  const ready = await th.app.inject({ url: '/health/ready' })
  t.equal(ready.statusCode, 200)
  t.same(ready.json(), { ok: true }, 'an anonymous probe learns ready or not, nothing more')
  const detailed = await th.app.inject({ url: '/health/ready', headers: admin })
  t.match(detailed.json(), { ok: true, tenants: 2, database: String }, "the operator's token sees what it runs on")
  const probes = [live, ready, detailed].map((res) => res.headers['x-request-id'])
  t.same(
    th.logs.filter((l) => probes.includes(l.reqId)),
    [],
    'a passing probe writes no line at info (an orchestrator asks every few seconds); it logs at debug',
  )
})

t.test('the admin API needs the admin token', async (t) => {
  assertProblem(t, await th.app.inject({ url: '/api/admin/tenants' }), 401, 'UNAUTHORIZED')
  assertProblem(t, await th.app.inject({ url: '/api/admin/tenants', headers: { authorization: 'Bearer wrong-token-of-some-length' } }), 401, 'UNAUTHORIZED')
  const list = await th.app.inject({ url: '/api/admin/tenants', headers: admin })
  t.same(list.json().tenants.map((x: any) => x.code), ['acme', 'beta'])
})

t.test('one log line per request, and no secret in any line', async (t) => {
  const res = await th.app.inject({ url: '/notes', headers: { 'x-tenant': 'acme', cookie: 'session=cookie-secret-value' } })
  const line = th.logs.find((l) => l.reqId === res.headers['x-request-id'] && l.msg === 'request completed')
  t.match(line, { reqId: String, tenant: 'acme', route: '/notes', status: 200, ms: Number, method: 'GET' })
  const lines = th.logs.filter((l) => l.reqId === res.headers['x-request-id'] && l.msg === 'request completed')
  t.equal(lines.length, 1)
  const raw = th.rawLogs()
  t.notMatch(raw, TEST_ADMIN_TOKEN, 'the admin token never reaches a log line')
  t.notMatch(raw, 'cookie-secret-value')
  t.notMatch(raw, 'wrong-token-of-some-length')
})
