// Prometheus metrics as an operator scrapes them: behind a token on the main port (or on a port
// of their own), by module, route and status class, with the pool, transactions, the change feed,
// tenants and modules, and per-tenant labels only when asked for.
import t from 'tap'
import { createTestDatabase } from '../src/testing/database.ts'
import { startTestHost, TEST_ADMIN_TOKEN } from '../src/testing/host.ts'
import { startServer } from './helpers/process.ts'
import { postgresPassOnly } from './helpers/passes.ts'

const admin = { authorization: `Bearer ${TEST_ADMIN_TOKEN}` }

/** The value of one series in Prometheus's text format, or undefined. */
function value(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(series + ' '))
  return line === undefined ? undefined : Number(line.slice(series.length + 1))
}

t.test('GET /metrics: behind a token, by module, route and status class; no tenant labels by default', async (t) => {
  const th = await startTestHost()
  t.teardown(th.close)
  await th.createTenant('acme')
  await th.createTenant('beta')
  await th.host.tenants.suspend('beta')
  const asAcme = { ...admin, 'x-tenant': 'acme' }
  for (let i = 0; i < 3; i++) t.equal((await th.app.inject({ url: '/api/plugins/inventory/items', headers: asAcme })).statusCode, 200)
  t.equal((await th.app.inject({ url: '/api/plugins/inventory/items/00000000-0000-4000-8000-000000000000', headers: asAcme })).statusCode, 404)
  t.equal((await th.app.inject({ url: '/no/such/path' })).statusCode, 404)

  t.equal((await th.app.inject({ url: '/metrics' })).statusCode, 401, 'no token, no metrics')
  t.equal((await th.app.inject({ url: '/metrics', headers: { authorization: 'Bearer wrong-token-0123456789abcdef' } })).statusCode, 401)
  const res = await th.app.inject({ url: '/metrics', headers: admin })
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^text\/plain; version=0\.0\.4/)
  const text = res.body
  t.equal(value(text, 'plinth_http_request_duration_seconds_count{module="inventory",route="/api/plugins/inventory/items",status_class="2xx"}'), 3)
  t.equal(value(text, 'plinth_http_request_duration_seconds_count{module="inventory",route="/api/plugins/inventory/items/:id",status_class="4xx"}'), 1)
  t.equal(value(text, 'plinth_http_request_duration_seconds_count{module="",route="unmatched",status_class="4xx"}'), 1, 'unmatched URLs are one series')
  t.ok(value(text, 'plinth_http_request_duration_seconds_bucket{le="0.5",module="inventory",route="/api/plugins/inventory/items",status_class="2xx"}') !== undefined, 'with a latency histogram')
  t.notMatch(text, /tenant="/, 'no tenant label unless asked for')
  t.ok(value(text, 'plinth_db_transactions_total{outcome="committed"}')! >= 3)
  t.ok(value(text, 'plinth_db_transactions_total{outcome="rolled_back"}')! >= 1, 'the 404 rolled back')
  t.ok(value(text, 'plinth_db_client_wait_seconds_count')! >= 4)
  const waited = value(text, 'plinth_db_client_wait_seconds_sum')! / value(text, 'plinth_db_client_wait_seconds_count')!
  t.ok(waited > 0 && waited < 0.25, `waits on an idle pool are in seconds, and short (${waited} s on average)`)
  for (const state of ['in_use', 'idle', 'waiting']) t.ok(value(text, `plinth_db_pool_clients{pool="platform",state="${state}"}`) !== undefined, `platform pool ${state}`)
  if (th.host.tenantConnections) {
    for (const state of ['in_use', 'idle', 'waiting']) t.ok(value(text, `plinth_db_pool_clients{pool="tenants",state="${state}"}`) !== undefined, `tenant connections ${state}`)
  }
  t.ok(value(text, 'plinth_change_feed_lag_seconds')! < 1)
  t.equal(value(text, `plinth_change_feed_mode{mode="${process.env.DATABASE_URL ? 'listen' : 'poll'}"}`), 1)
  t.equal(value(text, 'plinth_tenants{status="active"}'), 1)
  t.equal(value(text, 'plinth_tenants{status="suspended"}'), 1)
  t.ok(value(text, 'plinth_modules{status="loaded"}')! >= 2)
  t.ok(value(text, 'plinth_nodejs_eventloop_lag_seconds') !== undefined, 'process metrics: event loop lag')
  t.ok(value(text, 'plinth_process_resident_memory_bytes') !== undefined || /plinth_nodejs_heap_size_used_bytes/.test(text), 'heap')
  t.match(text, /plinth_nodejs_gc_duration_seconds/, 'GC')
})

t.test('per-tenant labels for the tenants named, the rest as "other"', async (t) => {
  const th = await startTestHost({ env: { PLINTH_METRICS_TENANTS: 'acme' } })
  t.teardown(th.close)
  for (const code of ['acme', 'beta']) {
    await th.createTenant(code)
    await th.app.inject({ url: '/api/plugins/inventory/items', headers: { ...admin, 'x-tenant': code } })
  }
  const text = (await th.app.inject({ url: '/metrics', headers: admin })).body
  t.equal(value(text, 'plinth_http_request_duration_seconds_count{module="inventory",route="/api/plugins/inventory/items",status_class="2xx",tenant="acme"}'), 1)
  t.equal(value(text, 'plinth_http_request_duration_seconds_count{module="inventory",route="/api/plugins/inventory/items",status_class="2xx",tenant="other"}'), 1)
})

t.test('PLINTH_METRICS=0: none collected, none served', async (t) => {
  const th = await startTestHost({ env: { PLINTH_METRICS: '0' } })
  t.teardown(th.close)
  t.equal((await th.app.inject({ url: '/metrics', headers: admin })).statusCode, 404)
})

t.test('METRICS_PORT: metrics on a port of their own, without a token, and not on the main port', postgresPassOnly, async (t) => {
  const database = await createTestDatabase()
  t.teardown(database.drop)
  const server = await startServer({ ...database.env, PLINTH_ADMIN_TOKEN: TEST_ADMIN_TOKEN, METRICS_PORT: '0' })
  t.teardown(() => server.child.kill('SIGKILL'))
  for (let i = 0; i < 20 && !/metrics listening at/.test(server.output()); i++) await new Promise((r) => setTimeout(r, 100))
  const url = /metrics listening at (http:\/\/[^"\s]+)/.exec(server.output())?.[1]
  t.ok(url, 'the log says where')
  const res = await fetch(url!)
  t.equal(res.status, 200)
  t.match(await res.text(), /plinth_db_pool_clients/)
  const elsewhere = await fetch(url!.replace('/metrics', '/other'))
  t.equal(elsewhere.status, 404)
  t.equal(elsewhere.headers.get('content-type'), 'application/problem+json; charset=utf-8', 'in the one error shape')
  t.match(await elsewhere.json(), { error: 'NOT_FOUND', status: 404 })
  t.equal((await fetch(`${server.url}/metrics`, { headers: admin })).status, 404, 'not on the main port')
})
