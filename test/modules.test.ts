// The module host: rules refuse, failures stay with their module, Express-style modules run
// unchanged, modules cannot reach each other, and enablement and migrations are per tenant.
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import t from 'tap'
import { PROJECT_ROOT } from '../src/app/paths.ts'
import { createTestDatabase } from '../src/testing/database.ts'
import { startTestHost, TEST_ADMIN_TOKEN } from '../src/testing/host.ts'
import { assertProblem } from './helpers/problem.ts'
import { startServer } from './helpers/process.ts'

const FIXTURES = path.join(PROJECT_ROOT, 'test/fixtures/modules')
const admin = { authorization: `Bearer ${TEST_ADMIN_TOKEN}` }
// No credential for anyone: these tests are about modules, not identities.
const everyone = { identify: async () => null, permissions: async () => new Set<string>() }
// A credential of whichever tenant the request names, granting nothing.
const anyone = { identify: async () => ({ id: 'key:anyone', kind: 'key' as const, tenantId: null }), permissions: async () => new Set<string>() }

t.test('refused and failed modules, each with its reason, while inventory keeps answering', async (t) => {
  const th = await startTestHost({
    env: {
      PLINTH_MODULE_DIRS: FIXTURES,
      PLINTH_MODULES: 'inventory,api-two,disagree,undeclared,throws,hangs',
      PLINTH_MODULE_REGISTER_TIMEOUT_MS: '300',
    },
    identities: everyone,
  })
  t.teardown(th.close)
  const byId = Object.fromEntries(th.host.modules.map((m) => [m.id, m]))
  t.match(byId['api-two'], { status: 'refused', reason: /^api \(api\): api "2\.x" does not accept this host's API version 1\.2\.0/ })
  t.match(byId.disagree, { status: 'refused', reason: /agreement \(version\).*"1\.0\.1" vs "1\.0\.0"/ })
  t.match(byId.undeclared, { status: 'refused', reason: /undeclared-permission.*inventory\.items\.delete/ })
  t.match(byId.throws, { status: 'failed', reason: 'register: cannot reach the billing service' })
  t.match(byId.hangs, { status: 'failed', reason: /did not finish within 300 ms/ })
  t.equal(byId.inventory.status, 'loaded')

  await th.createTenant('acme')
  const listed = await th.app.inject({ url: '/api/plugins' })
  t.same(
    listed.json().plugins.map((p: any) => [p.id, p.status, 'reason' in p]),
    [
      ['inventory', 'loaded', false],
      ['api-two', 'refused', false],
      ['disagree', 'refused', false],
      ['hangs', 'failed', false],
      ['throws', 'failed', false],
      ['undeclared', 'refused', false],
    ],
    'reasons are not shown to the public',
  )
  const forAdmin = await th.app.inject({ url: '/api/plugins', headers: admin })
  t.match(forAdmin.json().plugins.find((p: any) => p.id === 'throws'), { reason: 'register: cannot reach the billing service' })

  for (const id of ['api-two', 'throws', 'hangs']) {
    const health = await th.app.inject({ url: `/api/plugins/${id}/health` })
    t.equal(health.statusCode, 503)
    t.same(health.json(), { ok: false })
    assertProblem(t, await th.app.inject({ url: `/api/plugins/${id}/anything`, headers: { 'x-tenant': 'acme' } }), 503, 'MODULE_UNAVAILABLE')
  }
  assertProblem(t, await th.app.inject({ url: '/api/plugins/undeclared/steal', headers: { 'x-tenant': 'acme' } }), 503, 'MODULE_UNAVAILABLE')
  t.same((await th.app.inject({ url: '/api/plugins/inventory/health' })).json(), { ok: true })
  const items = await th.app.inject({ url: '/api/plugins/inventory/items', headers: { 'x-tenant': 'acme' } })
  t.equal(items.statusCode, 401, 'inventory answers (deny by default, no credential)')
})

t.test('PLINTH_STRICT_MODULES=1: a failing module fails the start', async (t) => {
  const database = await createTestDatabase()
  t.teardown(database.drop)
  const env = { ...database.env, PLINTH_MODULE_DIRS: FIXTURES, PLINTH_MODULES: 'inventory,throws', PLINTH_STRICT_MODULES: '1' }
  await t.rejects(startServer(env), /exited \(1\) before listening[\s\S]*throws failed: register: cannot reach the billing service/)
})

t.test('an Express-style module runs unchanged', async (t) => {
  const th = await startTestHost({
    env: { PLINTH_MODULE_DIRS: FIXTURES, PLINTH_MODULES: 'express,spy' },
    identities: {
      identify: async () => ({ id: 'key:k1', kind: 'key' as const, tenantId: null }),
      permissions: async () => new Set(['express.things.read']),
    },
  })
  t.teardown(th.close)
  await th.createTenant('acme')
  const headers = { 'x-tenant': 'acme' }
  const url = '/api/plugins/express/things'
  const created = await th.app.inject({ method: 'POST', url, headers, payload: { name: 'kettle' } })
  t.equal(created.statusCode, 201)
  t.same(created.json(), { name: 'kettle' })
  const list = await th.app.inject({ url, headers })
  t.same(list.json(), { things: ['kettle'], tenant: 'acme' })
  t.equal(list.headers['x-audited'], 'true', 'callback guards ran in order and next() passed on')
  t.equal((await th.app.inject({ url: url + '?early=1', headers })).statusCode, 202, 'a guard may answer itself')
  const teapot = await th.app.inject({ url: url + '?kind=teapot', headers })
  assertProblem(t, teapot, 418, 'I_M_A_TEAPOT')
  t.equal(teapot.json().detail, 'No teapots here.')
  const removed = await th.app.inject({ method: 'DELETE', url, headers })
  t.equal(removed.statusCode, 204)
  t.equal(removed.body, '')
  const broken = await th.app.inject({ url: '/api/plugins/express/broken', headers })
  assertProblem(t, broken, 500, 'INTERNAL_ERROR')
  t.notMatch(broken.body, /hunter2/)
})

t.test('a module cannot reach another module', async (t) => {
  const th = await startTestHost({ env: { PLINTH_MODULE_DIRS: FIXTURES, PLINTH_MODULES: 'express,spy' }, identities: anyone })
  t.teardown(th.close)
  await th.createTenant('acme')
  const headers = { 'x-tenant': 'acme' }
  const look = await th.app.inject({ url: '/api/plugins/spy/look', headers })
  t.same(look.json(), { sharedSecret: null, hasFastify: false }, "another module's ctx is not this one's")
  const peek = await th.app.inject({ url: '/api/plugins/express/peek', headers })
  const { seenFromOther, ctxKeys } = peek.json()
  t.equal(seenFromOther, null, "another module's request decorations do not reach this one")
  for (const member of ['router', 'rbac', 'withTenantTx', 'tenants', 'log']) t.ok(ctxKeys.includes(member), `ctx.${member}, as the contract documents`)
  t.ok(ctxKeys.includes('sharedSecret'), 'what a module adds to its ctx stays in its own')
  t.equal((await th.app.inject({ url: '/api/plugins/spy/things', headers })).statusCode, 404, "another module's routes are not under this prefix")
})

t.test('deny by default: a module route without a guard needs a credential of the tenant, unless it says it is public', async (t) => {
  const th = await startTestHost({ env: { PLINTH_MODULE_DIRS: FIXTURES, PLINTH_MODULES: 'spy' }, identities: everyone })
  t.teardown(th.close)
  await th.createTenant('acme')
  const headers = { 'x-tenant': 'acme' }
  assertProblem(t, await th.app.inject({ url: '/api/plugins/spy/look', headers }), 401, 'UNAUTHORIZED')
  const open = await th.app.inject({ url: '/api/plugins/spy/open', headers })
  t.equal(open.statusCode, 200, 'a route said to be public answers without a credential')
  t.same(open.json(), { tenant: 'acme', principal: null })
  assertProblem(t, await th.app.inject({ url: '/api/plugins/spy/open' }), 400, 'TENANT_REQUIRED')
  t.equal((await th.app.inject({ url: '/api/plugins/spy/health' })).statusCode, 200, '/health stays open')
})

t.test('enable and disable per tenant; a failing module migration stays with its tenant', async (t) => {
  const plugins = await fs.mkdtemp(path.join(os.tmpdir(), 'plinth-plugins-'))
  t.teardown(() => fs.rm(plugins, { recursive: true, force: true }))
  await fs.cp(path.join(FIXTURES, 'migfail'), path.join(plugins, 'migfail'), { recursive: true })
  const database = await createTestDatabase()
  t.teardown(database.drop)
  const env = { PLINTH_MODULE_DIRS: plugins, PLINTH_MODULES: 'inventory,migfail' }

  const second = await startTestHost({ database, env: { ...env, PLINTH_DEFAULT_MODULES: 'inventory' }, identities: anyone })
  await second.createTenant('acme')
  const beta = await second.createTenant('beta')
  await second.host.pool.query('CREATE TABLE t_beta.stop_here (id int)')
  t.match(await second.host.enableModule('acme', 'migfail'), { status: 'ok', applied: ['001_rows.sql'] })
  t.match(await second.host.enableModule('beta', 'migfail'), { status: 'failed', error: /cannot migrate: stop_here exists/ })
  const rows = (tenant: string) => second.app.inject({ url: '/api/plugins/migfail/rows', headers: { 'x-tenant': tenant } })
  t.same((await rows('acme')).json(), { n: 0 })
  assertProblem(t, await rows('beta'), 503, 'MODULE_UNAVAILABLE')
  t.match(second.host.tenantModules.state(beta.id, 'migfail'), { status: 'failed', error: /stop_here exists/ })

  await second.host.disableModule('acme', 'migfail')
  assertProblem(t, await rows('acme'), 404, 'MODULE_NOT_ENABLED')
  await second.host.enableModule('acme', 'migfail')
  t.equal((await rows('acme')).statusCode, 200, 'enabled again, data kept')
  // The operator fixes beta's data, and a new start (or plinth migrate) completes it.
  await second.host.pool.query('DROP TABLE t_beta.stop_here')
  await second.close()
  const third = await startTestHost({ database, env, identities: anyone })
  t.teardown(third.close)
  t.same(third.host.lastMigration!.tenants.map((r) => [r.tenant, r.source, r.status]), [['beta', 'migfail', 'ok']])
  t.same((await third.app.inject({ url: '/api/plugins/migfail/rows', headers: { 'x-tenant': 'beta' } })).json(), { n: 0 })
  const health = await third.app.inject({ url: '/api/plugins/migfail/health' })
  t.same(health.json(), { ok: true })
})
