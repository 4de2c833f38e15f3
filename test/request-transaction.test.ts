// The request's transaction (contract.md): one client, the tenant's search_path, COMMIT before
// the reply, ROLLBACK on any error, the client back in the pool exactly once on every path.
import { setTimeout as sleep } from 'node:timers/promises'
import http from 'node:http'
import t, { type Test } from 'tap'
import { startTestHost } from '../src/testing/host.ts'
import { countDatabaseWork } from './helpers/count-database-work.ts'
import { createNoteTable, noteRoutes } from './helpers/notes.ts'

const poolIsIdle = (pool: { totalCount: number; idleCount: number; waitingCount: number }) =>
  pool.waitingCount === 0 && pool.idleCount === pool.totalCount

async function settle(pool: Parameters<typeof poolIsIdle>[0], ms = 2000) {
  const deadline = Date.now() + ms
  while (!poolIsIdle(pool) && Date.now() < deadline) await sleep(20)
  return poolIsIdle(pool)
}

/** A host serving the note routes, with tenant acme and its note table. */
async function notesHost(t: { teardown(fn: () => unknown): void }) {
  const th = await startTestHost({ tenantRoutes: noteRoutes })
  t.teardown(th.close)
  const acme = await th.createTenant('acme')
  await createNoteTable(th.host, acme.id)
  return { th, acme, headers: { 'x-tenant': 'acme' } }
}

for (const poolMax of ['10', '1']) {
  t.test(`two tenants see only their own rows (DB_POOL_MAX=${poolMax})`, async (t) => {
    const th = await startTestHost({ env: { DB_POOL_MAX: poolMax }, tenantRoutes: noteRoutes })
    t.teardown(th.close)
    const acme = await th.createTenant('acme')
    const beta = await th.createTenant('beta')
    await createNoteTable(th.host, acme.id)
    await createNoteTable(th.host, beta.id)

    for (let i = 0; i < 3; i++) {
      const a = await th.app.inject({ method: 'POST', url: '/notes', headers: { 'x-tenant': 'acme' }, payload: { body: `acme-${i}` } })
      t.equal(a.statusCode, 201)
      const b = await th.app.inject({ method: 'POST', url: '/notes', headers: { 'x-tenant': 'beta' }, payload: { body: `beta-${i}` } })
      t.equal(b.statusCode, 201)
    }
    // Interleaved reads on (possibly) the same pooled connection: none carries the other's search_path.
    const reads = await Promise.all(
      Array.from({ length: 10 }, (_, i) => th.app.inject({ url: '/notes', headers: { 'x-tenant': i % 2 ? 'acme' : 'beta' } })),
    )
    reads.forEach((res, i) => {
      const bodies = res.json().notes.map((n: any) => n.body)
      const own = i % 2 ? 'acme' : 'beta'
      t.same(bodies, [0, 1, 2].map((n) => `${own}-${n}`), `request ${i} sees only ${own}`)
    })
    const path = await th.app.inject({ url: '/search-path', headers: { 'x-tenant': 'beta' } })
    t.same(path.json(), { schema: 't_beta', path: 't_beta, public, pg_temp' })
    // After the transaction, a pooled connection carries no tenant.
    const { rows } = await th.host.pool.query('SELECT current_schema() AS schema')
    t.equal(rows[0].schema, 'public')
    t.ok(await settle(th.host.tenantClientPool), 'every client is back in the pool')
  })
}

t.test('errors roll back', async (t) => {
  const { th, headers } = await notesHost(t)

  const thrown = await th.app.inject({ method: 'POST', url: '/notes', headers, payload: { body: 'gone-1', then: 'throw' } })
  t.equal(thrown.statusCode, 500)
  t.equal(thrown.json().error, 'INTERNAL_ERROR')
  t.notMatch(thrown.body, /secret-detail|handler failed|at .*\.ts/, 'no message or stack reaches the caller')

  const refused = await th.app.inject({ method: 'POST', url: '/notes', headers, payload: { body: 'gone-2', then: 'reply-422' } })
  t.equal(refused.statusCode, 422, 'a 4xx the handler chose')
  const badRequest = await th.app.inject({ method: 'POST', url: '/notes', headers, payload: { body: 'gone-400', then: 'reply-400' } })
  t.equal(badRequest.statusCode, 400, 'a 400 rolls back as well: the bound is status >= 400')
  const below = await th.app.inject({ method: 'POST', url: '/notes', headers, payload: { body: 'kept-399', then: 'reply-399' } })
  t.equal(below.statusCode, 399, 'a status under 400 commits')

  const badSql = await th.app.inject({ method: 'POST', url: '/notes', headers, payload: { body: 'gone-3', then: 'bad-sql' } })
  t.equal(badSql.statusCode, 500)
  t.notMatch(badSql.body, /no_such_table|secret_detail|SELECT/i, 'no SQL reaches the caller')

  const kept = await th.app.inject({ method: 'POST', url: '/notes', headers, payload: { body: 'kept' } })
  t.equal(kept.statusCode, 201)
  const list = await th.app.inject({ url: '/notes', headers })
  t.same(list.json().notes.map((n: any) => n.body), ['kept-399', 'kept'], 'only the successful writes are there')

  const logged = th.logs.filter((l) => l.err && l.reqId === thrown.json().requestId)
  t.ok(logged.some((l) => /secret-detail-42/.test(l.err.message) && l.err.stack), 'the log keeps the message and stack, by request id')
  t.ok(await settle(th.host.tenantClientPool), 'every client is back in the pool')
})

t.test('a failing COMMIT answers 5xx, never 2xx', async (t) => {
  const { th, headers } = await notesHost(t)
  const res = await th.app.inject({ method: 'POST', url: '/notes', headers, payload: { body: 'refuse-at-commit' } })
  t.equal(res.statusCode, 500, 'the handler said 201; the COMMIT said no')
  t.equal(res.headers['content-type'], 'application/problem+json; charset=utf-8')
  t.equal(res.json().error, 'INTERNAL_ERROR')
  t.notMatch(res.body, /secret-detail|refused at commit/)
  const list = await th.app.inject({ url: '/notes', headers })
  t.same(list.json().notes, [], 'nothing was written')
  t.ok(await settle(th.host.tenantClientPool), 'the client was released')
  const logged = th.logs.find((l) => l.msg === 'COMMIT failed; the response becomes an error')
  t.equal(logged?.level, 50, 'the operator reads why, at error')
  // Citus commits on the tenant's worker and tells its own reason; the worker's is in the worker's log.
  t.match(logged?.err?.message, th.host.db.citus ? /could not commit transaction/ : /note refused at commit/)

  const withLength = await th.app.inject({ method: 'POST', url: '/notes', headers, payload: { body: 'refuse-at-commit', then: 'with-length' } })
  t.equal(withLength.statusCode, 500, 'a handler that set Content-Length')
  t.equal(withLength.json().error, 'INTERNAL_ERROR', 'still gets the whole error body, not one cut to the length it announced')
})

t.test('a COMMIT refused with what would be a 4xx (a deferred unique violation) still answers 500, and keeps nothing', async (t) => {
  const { th, headers } = await notesHost(t)
  const res = await th.app.inject({ method: 'POST', url: '/notes', headers, payload: { body: 'conflict-at-commit' } })
  t.equal(res.statusCode, 500, 'the handler already answered 201: only a server error is honest now')
  t.equal(res.json().error, 'INTERNAL_ERROR')
  t.same((await th.app.inject({ url: '/notes', headers })).json().notes, [], 'nothing was written')
})

t.test('a client whose COMMIT failed is destroyed, not returned to the pool', async (t) => {
  const th = await startTestHost({ env: { DB_POOL_MAX: '1' }, tenantRoutes: noteRoutes })
  t.teardown(th.close)
  await createNoteTable(th.host, (await th.createTenant('acme')).id)
  const headers = { 'x-tenant': 'acme' }
  t.equal((await th.app.inject({ url: '/notes', headers })).statusCode, 200)
  t.equal(th.host.tenantClientPool.totalCount, 1, 'one client, back in the pool')
  t.equal((await th.app.inject({ method: 'POST', url: '/notes', headers, payload: { body: 'refuse-at-commit' } })).statusCode, 500)
  t.equal(th.host.tenantClientPool.totalCount, 0, 'the client that failed its COMMIT is gone, not idle in the pool')
  t.equal((await th.app.inject({ url: '/notes', headers })).statusCode, 200, 'a new one serves the next request')
})

/** Sends a request over a real socket and hangs up after `ms`, before any answer. */
async function callAndLeave(th: { app: { server: http.Server } }, path: string, body: object, ms: number) {
  const { port } = th.app.server.address() as { port: number }
  await new Promise<void>((resolve) => {
    const req = http.request({ port, method: 'POST', path, headers: { 'x-tenant': 'acme', 'content-type': 'application/json' } })
    req.on('error', () => resolve())
    req.end(JSON.stringify(body))
    setTimeout(() => {
      req.destroy()
      resolve()
    }, ms)
  })
}

// Each moment a caller can leave at, and the path that rolls its work back there.
const callerLeaves: [moment: string, path: string, body: object, leaveAfterMs: number][] = [
  // The handler answers 201 after the caller left: the reply still goes through onSend.
  ['the handler answers after the caller left', '/notes', { body: 'from-a-caller-who-left', then: 'hold' }, 150],
  // Nothing is sent for it, so no onSend runs: the handler's end is the last moment to roll back.
  ['the handler stops without answering once its caller left', '/notes/until-caller-leaves', {}, 150],
  // It returned reply: the handler's promise follows the reply until the caller leaves.
  ['the handler says it answers later and never does', '/notes/answer-never', {}, 300],
]
for (const [moment, path, body, leaveAfterMs] of callerLeaves) {
  t.test(`a caller who leaves (${moment}): its work is rolled back, its client is back`, async (t) => {
    const { th, headers } = await notesHost(t)
    await th.app.listen({ port: 0, host: '127.0.0.1' })
    await callAndLeave(th, path, body, leaveAfterMs)
    t.ok(await settle(th.host.tenantClientPool, 3000), 'the client is back once the handler is done')
    t.same((await th.app.inject({ url: '/notes', headers })).json().notes, [], 'nothing the gone caller started was kept')
  })
}

t.test('a hijacked reply (no onSend runs for it): its transaction rolls back and its client comes back', async (t) => {
  const { th, headers } = await notesHost(t)
  const res = await th.app.inject({ method: 'POST', url: '/notes/hijacked', headers })
  t.equal(res.body, 'raw answer')
  t.ok(await settle(th.host.tenantClientPool), 'no client is held by the hijacked request')
  t.same((await th.app.inject({ url: '/notes', headers })).json().notes, [], 'plinth cannot know a raw answer succeeded: nothing is kept')
})

t.test('a handler that swallows a failed statement answers 5xx: its transaction was aborted', async (t) => {
  const { th, headers } = await notesHost(t)
  const res = await th.app.inject({ method: 'POST', url: '/notes', headers, payload: { body: 'lost', then: 'swallow-sql-error' } })
  t.equal(res.statusCode, 500, 'the handler said 201; PostgreSQL answered the COMMIT with ROLLBACK')
  t.equal(res.json().error, 'INTERNAL_ERROR')
  const logged = th.logs.find((l) => l.reqId === res.headers['x-request-id'] && l.err)
  t.equal(logged?.err?.message, 'the transaction was aborted by a failed statement; COMMIT rolled it back', 'the log says why')
  const list = await th.app.inject({ url: '/notes', headers })
  t.same(list.json().notes, [], 'nothing was written')
  t.ok(await settle(th.host.tenantClientPool))
})

t.test('a platform write whose connection dies gives its pooled client up, and the next write works', { skip: !process.env.DATABASE_URL && 'PostgreSQL only' }, async (t) => {
  const { th, acme } = await notesHost(t)
  const inUse = () => th.host.tenantClientPool.totalCount - th.host.tenantClientPool.idleCount
  await t.rejects(
    th.host.keys.create(acme, 'doomed', async (client) => {
      const { rows } = await client.query('SELECT pg_backend_pid() AS pid')
      await th.host.pool.query('SELECT pg_terminate_backend($1::int)', [rows[0].pid])
      await client.query('SELECT 1')
    }),
  )
  t.equal(inUse(), 0, 'the dead client is not held: neither its COMMIT nor its ROLLBACK could run')
  t.ok(await th.host.keys.create(acme, 'fine'), 'a new connection serves the next write')
  t.same((await th.host.keys.list(acme.id)).map((k) => k.name), ['fine'], 'nothing of the failed one was written')
})

/** After a lost connection: no client held, the pool serves on a fresh one, and nothing lost was written. */
async function servesOnAndKeptNothing(t: Test, th: Awaited<ReturnType<typeof notesHost>>['th'], headers: Record<string, string>) {
  t.ok(await settle(th.host.tenantClientPool), 'no client is held')
  const kept = await th.app.inject({ method: 'POST', url: '/notes', headers, payload: { body: 'kept' } })
  t.equal(kept.statusCode, 201, 'the pool serves on a fresh connection')
  const list = await th.app.inject({ url: '/notes', headers })
  t.same(list.json().notes.map((n: any) => n.body), ['kept'], 'nothing of the lost requests was written')
}

t.test('a connection lost mid-request answers 5xx in the one shape, and its client is not reused', { skip: !process.env.DATABASE_URL && 'PostgreSQL only' }, async (t) => {
  const { th, headers } = await notesHost(t)
  const thrown = await th.app.inject({ method: 'POST', url: '/notes', headers, payload: { body: 'lost-1', then: 'lose-connection' } })
  t.equal(thrown.statusCode, 503)
  t.equal(thrown.headers['content-type'], 'application/problem+json; charset=utf-8')
  t.equal(thrown.json().error, 'DB_UNAVAILABLE')
  const quiet = await th.app.inject({ method: 'POST', url: '/notes', headers, payload: { body: 'lost-2', then: 'lose-connection-quietly' } })
  t.equal(quiet.statusCode, 503, 'the handler said 201 on a dead connection: COMMIT failed, and the caller may retry')
  t.equal(quiet.json().error, 'DB_UNAVAILABLE')
  await servesOnAndKeptNothing(t, th, headers)
})

t.test('a connection cut under a request (the network drops): 5xx in the one shape, nothing kept, the pool serves on', async (t) => {
  const { th, headers } = await notesHost(t)
  const cut = await th.app.inject({ method: 'POST', url: '/notes', headers, payload: { body: 'cut-1', then: 'cut-socket' } })
  t.ok(cut.statusCode >= 500, `answered ${cut.statusCode}`)
  t.equal(cut.headers['content-type'], 'application/problem+json; charset=utf-8')
  await servesOnAndKeptNothing(t, th, headers)
})

t.test('a warm request costs two round trips and two socket writes: BEGIN + search_path travel with its first statement', async (t) => {
  const { th, headers } = await notesHost(t)
  await th.app.inject({ method: 'POST', url: '/notes', headers, payload: { body: 'one' } })
  await th.host.changes.stop() // the embedded database's change poll is not the request's work
  const work = await countDatabaseWork(async () => {
    for (let i = 0; i < 20; i++) t.equal((await th.app.inject({ url: '/notes', headers })).json().notes.length, 1)
  })
  // On Citus, BEGIN goes as a query of its own (scripts.ts): one statement more, in the same round trip.
  const perRequest = th.host.db.citus ? 4 : 3
  t.ok(work.statements <= 20 * perRequest, `at most BEGIN with its settings, the SELECT, and COMMIT with the session clean-up a request (${work.statements} for 20)`)
  t.equal(work.roundTrips, 40, 'in two round trips a request')
  t.equal(work.writes, 40, 'in two socket writes a request: BEGIN leaves with the first statement, then COMMIT')
})

t.test('a client that disconnects mid-request gives its pooled client back', async (t) => {
  const th = await startTestHost({ env: { DB_POOL_MAX: '2' }, tenantRoutes: noteRoutes })
  t.teardown(th.close)
  await th.createTenant('acme')
  await th.app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = th.app.server.address() as { port: number }
  const aborted = new Promise<void>((resolve) => {
    const req = http.get({ port, path: '/hold?ms=400', headers: { 'x-tenant': 'acme' } })
    req.on('error', () => resolve())
    setTimeout(() => {
      req.destroy()
      resolve()
    }, 100)
  })
  await aborted
  t.equal(th.host.tenantClientPool.totalCount - th.host.tenantClientPool.idleCount, 1, 'the handler still holds its client')
  t.ok(await settle(th.host.tenantClientPool, 3000), 'the client is back once the handler is done')
  const after = await th.app.inject({ url: '/hold?ms=1', headers: { 'x-tenant': 'acme' } })
  t.equal(after.statusCode, 200, 'the pool still serves')
})

t.test('pool exhaustion answers 503 DB_UNAVAILABLE in bounded time', async (t) => {
  const th = await startTestHost({ env: { DB_POOL_MAX: '1', DB_ACQUIRE_TIMEOUT_MS: '300' }, tenantRoutes: noteRoutes })
  t.teardown(th.close)
  await th.createTenant('acme')
  const headers = { 'x-tenant': 'acme' }
  // inject() starts on then(): hand it to a promise so the holder really runs.
  const holder = Promise.resolve(th.app.inject({ url: '/hold?ms=1500', headers }))
  await sleep(150)
  const started = Date.now()
  const res = await th.app.inject({ url: '/hold?ms=1', headers })
  const waited = Date.now() - started
  t.equal(res.statusCode, 503)
  t.equal(res.json().error, 'DB_UNAVAILABLE')
  t.equal(res.headers['retry-after'], '1')
  t.ok(waited < 1200, `answered after ${waited} ms, bounded by DB_ACQUIRE_TIMEOUT_MS, not by the holder`)
  t.equal((await holder).statusCode, 200)
  t.ok(await settle(th.host.tenantClientPool))
})

t.test('withTenantTx commits on success and rolls back on throw', async (t) => {
  const { th, acme } = await notesHost(t)
  const { sql } = await import('drizzle-orm')
  await th.host.withTenantTx(acme.id, (db) => db.execute(sql`INSERT INTO note (body) VALUES ('job')`))
  await t.rejects(
    th.host.withTenantTx(acme.id, async (db) => {
      await db.execute(sql`INSERT INTO note (body) VALUES ('lost')`)
      throw new Error('job failed')
    }),
    /job failed/,
  )
  for (const unknown of ['00000000-0000-0000-0000-000000000000', 'nobody', 'not-a-uuid-1234']) {
    await t.rejects(th.host.withTenantTx(unknown, async () => 1), { name: 'UnknownTenantError', message: `withTenantTx: no tenant has the id or code "${unknown}"` })
  }
  await th.host.withTenantTx('acme', (db) => db.execute(sql`INSERT INTO note (body) VALUES ('by code')`))
  const list = await th.app.inject({ url: '/notes', headers: { 'x-tenant': 'acme' } })
  t.same(list.json().notes.map((n: any) => n.body), ['job', 'by code'])
  t.ok(await settle(th.host.tenantClientPool))
})
