// Tracing on (what PLINTH_OTEL=1 turns on), spans caught by an in-memory exporter: the span tree of
// a request that uses req.db, of one that uses withTenantTx, of a 403 and of a 500; the attributes
// plinth sets and the ones a caller cannot; the trace ids in the log lines; what is not traced.
// The statement spans on the embedded database too (the first test runs on both passes), and
// through a real PgBouncer in transaction mode.
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import t from 'tap'
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-node'
import { SpanKind, SpanStatusCode } from '@opentelemetry/api'
import { startTracing } from '../src/platform/otel/setup.ts'
import { startTestHost } from '../src/testing/host.ts'
import { createTestDatabase, type TestDatabase } from '../src/testing/database.ts'
import { pgbouncerBinary, startPgBouncer } from './helpers/pgbouncer.ts'
import { postgresPassOnly } from './helpers/passes.ts'

const exporter = new InMemorySpanExporter()
const telemetry = startTracing({ serviceVersion: 'test', exporter, immediate: true })
t.teardown(() => telemetry.shutdown())

/** A module written as a stranger would: in a folder of its own, outside the project. */
async function tracedModule(t: { teardown(fn: () => unknown): void }): Promise<string> {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'plinth-traced-'))
  t.teardown(() => fs.rm(root, { recursive: true, force: true }))
  await fs.mkdir(path.join(root, 'traced'))
  await fs.writeFile(
    path.join(root, 'traced/module.config.ts'),
    "export default { id: 'traced', name: 'Traced', version: '1.0.0', api: '^1.2', permissions: ['traced.things.read'] }\n",
  )
  await fs.writeFile(
    path.join(root, 'traced/plugin.ts'),
    `import { sql } from 'drizzle-orm'
export const permissions = ['traced.things.read']
export default {
  meta: { id: 'traced', name: 'Traced', version: '1.0.0', api: '^1.2' },
  async register(ctx) {
    const read = ctx.rbac.require('traced.things.read')
    ctx.jobs.define('recount', async (payload, job) => ctx.trace.inSpan('recount inner', () => job.db.execute(sql\`SELECT 'recounted' AS done\`)))
    ctx.router.get('/own', read, async (req, res) => {
      const row = await ctx.trace.inSpan('price lookup', async () => (await req.db.execute(sql\`SELECT 7 AS price\`)).rows[0], { 'lookup.kind': 'price' })
      await ctx.jobs.enqueue('recount', {})
      res.json(row)
    })
    ctx.router.get('/db', read, async (req, res) => res.json((await req.db.execute(sql\`SELECT 41 + 1 AS answer\`)).rows[0]))
    ctx.router.get('/tx', read, async (req, res) => {
      const row = await ctx.withTenantTx(req.tenant.id, async (db) => (await db.execute(sql\`SELECT 'inside' AS where_am_i\`)).rows[0])
      ctx.log('answered from withTenantTx')
      res.json(row)
    })
    ctx.router.get('/boom', read, () => { throw new Error('the handler broke') })
  },
}
`,
  )
  return root
}

async function tracedHost(t: { teardown(fn: () => unknown): void }, options: { database?: TestDatabase; env?: Record<string, string> } = {}) {
  const th = await startTestHost({ database: options.database, env: { PLINTH_MODULE_DIRS: await tracedModule(t), ...options.env } })
  t.teardown(th.close)
  await th.createTenant('acme')
  const acme = await th.host.tenants.get('acme')
  await th.host.roles.create(acme, 'reader')
  await th.host.roles.grant(acme, 'reader', 'traced.things.read')
  const reader = await th.host.createKey('acme', 'reader', ['reader'])
  const nobody = await th.host.createKey('acme', 'nobody')
  return { th, reader: reader.key, nobody: nobody.key }
}

/** The spans of the one request `send` makes, by trace. */
async function spansOf(send: () => Promise<{ statusCode: number }>) {
  exporter.reset()
  const res = await send()
  // A span ends as its request's onResponse runs, right after the reply.
  await new Promise((resolve) => setTimeout(resolve, 50))
  const spans = exporter.getFinishedSpans()
  const server = spans.filter((s) => s.kind === SpanKind.SERVER)
  return { res, spans, server: server[0], count: server.length }
}

const parentOf = (span: ReadableSpan) => span.parentSpanContext?.spanId
const childrenOf = (spans: ReadableSpan[], parent: ReadableSpan) => spans.filter((s) => parentOf(s) === parent.spanContext().spanId)
const statements = (spans: ReadableSpan[]) => spans.filter((s) => s.attributes['db.system.name'] === 'postgresql' && s.attributes['db.query.text'] !== undefined)

t.test('a request with req.db: one server span by route, its tenant transaction, its statement', async (t) => {
  const { th, reader } = await tracedHost(t)
  const { res, spans, server, count } = await spansOf(() => th.app.inject({ url: '/api/plugins/traced/db', headers: { authorization: `Bearer ${reader}` } }))
  t.equal(res.statusCode, 200)
  t.equal(count, 1, 'one server span')
  t.equal(server.name, 'GET /api/plugins/traced/db', 'named by method and route template')
  t.match(server.attributes, { 'http.request.method': 'GET', 'http.route': '/api/plugins/traced/db', 'http.response.status_code': 200, 'plinth.tenant': 'acme', 'plinth.module': 'traced', 'plinth.principal.kind': 'key' })
  t.equal(server.status.code, SpanStatusCode.UNSET)
  t.ok(spans.every((s) => s.spanContext().traceId === server.spanContext().traceId), 'every span in its trace')

  const [transaction] = spans.filter((s) => s.name === 'tenant transaction')
  t.ok(transaction, 'a tenant transaction span')
  t.equal(parentOf(transaction), server.spanContext().spanId, 'a child of the request')
  t.match(transaction.attributes, { 'db.namespace': 't_acme', 'plinth.transaction.outcome': 'committed' })
  const queries = statements(spans)
  const answer = queries.find((s) => /41 \+ 1/.test(String(s.attributes['db.query.text'])))
  t.ok(answer, "the module's statement has a span")
  t.match(answer!.attributes, { 'db.system.name': 'postgresql', 'db.namespace': 't_acme', 'db.operation.name': 'SELECT' })
  t.equal(answer!.name, 'SELECT t_acme')
  t.equal(answer!.spanContext().traceId, server.spanContext().traceId)
  t.notOk(queries.some((s) => /^\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT)/i.test(String(s.attributes['db.query.text']))), 'no span of its own for BEGIN, its settings or COMMIT')
  t.ok(spans.some((s) => s.name === 'guard rbac.require' && s.attributes['plinth.permission'] === 'traced.things.read'), 'the guard has a span')
  t.ok(spans.some((s) => s.name === 'handler' && s.attributes['plinth.module'] === 'traced'), "and the module's handler")
})

t.test("a module's own span (ctx.trace, API 1.2), and a job's: tenant and module set, statements under them", async (t) => {
  const { th, reader } = await tracedHost(t)
  const { res, spans, server } = await spansOf(() => th.app.inject({ url: '/api/plugins/traced/own', headers: { authorization: `Bearer ${reader}` } }))
  t.equal(res.statusCode, 200)
  t.same(JSON.parse((res as unknown as { body: string }).body), { price: 7 })
  const own = spans.find((s) => s.name === 'price lookup')
  t.match(own?.attributes, { 'plinth.module': 'traced', 'plinth.tenant': 'acme', 'lookup.kind': 'price' }, "the module's span, its attributes and plinth's")
  t.equal(own!.spanContext().traceId, server.spanContext().traceId, "in the request's trace")
  const price = statements(spans).find((s) => /SELECT 7/.test(String(s.attributes['db.query.text'])))
  t.equal(parentOf(price!), own!.spanContext().spanId, 'its statement under it')

  exporter.reset()
  t.same(await th.runJobs(), { completed: 1, failed: 0 }, 'the job the request enqueued')
  await new Promise((resolve) => setTimeout(resolve, 50))
  const jobSpans = exporter.getFinishedSpans()
  const job = jobSpans.find((s) => s.name === 'job traced/recount')
  t.match(job?.attributes, { 'plinth.module': 'traced', 'plinth.tenant': 'acme', 'plinth.job.attempt': 1 }, 'a span for the job')
  const inner = jobSpans.find((s) => s.name === 'recount inner')
  t.match(inner?.attributes, { 'plinth.module': 'traced', 'plinth.tenant': 'acme' }, "the module's span inside it knows its tenant")
  t.equal(parentOf(inner!), job!.spanContext().spanId, "and is the job's child")
  const recounted = statements(jobSpans).find((s) => /recounted/.test(String(s.attributes['db.query.text'])))
  t.equal(recounted!.spanContext().traceId, job!.spanContext().traceId, "the job's statement is in the job's trace")
  t.equal(recounted!.attributes['db.namespace'], 't_acme')
})

t.test('withTenantTx: its span, and its statements under it', postgresPassOnly, async (t) => {
  const { th, reader } = await tracedHost(t)
  const { res, spans, server } = await spansOf(() => th.app.inject({ url: '/api/plugins/traced/tx', headers: { authorization: `Bearer ${reader}` } }))
  t.equal(res.statusCode, 200)
  const [withTx] = spans.filter((s) => s.name === 'withTenantTx')
  t.match(withTx?.attributes, { 'plinth.module': 'traced' })
  const inside = statements(spans).find((s) => /inside/.test(String(s.attributes['db.query.text'])))
  t.equal(parentOf(inside!), withTx.spanContext().spanId, "the statement is withTenantTx's child")
  t.notOk(statements(spans).some((s) => /SAVEPOINT/.test(String(s.attributes['db.query.text']))), 'its SAVEPOINT is not a span of its own')

  // The log lines of a traced request carry its trace.
  const line = th.logs.find((l) => l.msg === 'answered from withTenantTx')
  t.equal(line?.trace_id, server.spanContext().traceId, "the module's log line has the trace id")
  t.equal(line?.span_id, server.spanContext().spanId, "and its request span's id")
  const completed = th.logs.filter((l) => l.msg === 'request completed').at(-1)
  t.equal(completed?.trace_id, server.spanContext().traceId, 'and so does the request line')
})

t.test('a 403 is an answer, not a failure; a 500 is a failure, with its exception', postgresPassOnly, async (t) => {
  const { th, reader, nobody } = await tracedHost(t)
  const refused = await spansOf(() => th.app.inject({ url: '/api/plugins/traced/db', headers: { authorization: `Bearer ${nobody}` } }))
  t.equal(refused.res.statusCode, 403)
  t.equal(refused.server.status.code, SpanStatusCode.UNSET, 'the 403 request span is not an error')
  t.equal(refused.server.attributes['http.response.status_code'], 403)
  t.notOk(refused.spans.some((s) => s.name === 'tenant transaction'), 'refused by its guard before any transaction')

  const broken = await spansOf(() => th.app.inject({ url: '/api/plugins/traced/boom', headers: { authorization: `Bearer ${reader}` } }))
  t.equal(broken.res.statusCode, 500)
  t.equal(broken.server.status.code, SpanStatusCode.ERROR, 'a 500 marks the request span')
  t.ok(broken.server.events.some((e) => e.name === 'exception' && e.attributes?.['exception.message'] === 'the handler broke'), 'with the exception recorded')
  const [transaction] = broken.spans.filter((s) => s.name === 'tenant transaction')
  t.equal(transaction?.attributes['plinth.transaction.outcome'], 'rolled back')
})

t.test("the caller's traceparent is continued; its baggage is not believed", postgresPassOnly, async (t) => {
  const { th, reader } = await tracedHost(t)
  const traceId = '4bf92f3577b34da6a3ce929d0e0e4736'
  const parentId = '00f067aa0ba902b7'
  const { server } = await spansOf(() =>
    th.app.inject({
      url: '/api/plugins/traced/db',
      headers: {
        authorization: `Bearer ${reader}`,
        traceparent: `00-${traceId}-${parentId}-01`,
        baggage: 'plinth.tenant=beta,plinth.module=evil,plinth.principal.kind=admin',
      },
    }),
  )
  t.equal(server.spanContext().traceId, traceId, "the caller's trace")
  t.equal(parentOf(server), parentId, 'under its span')
  t.match(server.attributes, { 'plinth.tenant': 'acme', 'plinth.module': 'traced', 'plinth.principal.kind': 'key' }, 'what plinth resolved, not what baggage says')
})

t.test('probes and metrics are not traced', postgresPassOnly, async (t) => {
  const { th } = await tracedHost(t)
  for (const url of ['/health/live', '/health/ready']) {
    const { res, count } = await spansOf(() => th.app.inject({ url }))
    t.equal(res.statusCode, 200)
    t.equal(count, 0, `${url}: no span`)
  }
})


t.test('through PgBouncer in transaction mode: the same tree', { skip: !process.env.DATABASE_URL ? 'PgBouncer fronts a PostgreSQL server (DATABASE_URL)' : !pgbouncerBinary() && "no pgbouncer (Debian's package)" }, async (t) => {
  const database = await createTestDatabase()
  t.teardown(database.drop)
  const bouncer = await startPgBouncer('transaction', database.env.DATABASE_URL!)
  t.teardown(bouncer.stop)
  const { th, reader } = await tracedHost(t, { database, env: { DATABASE_URL: bouncer.urlFor(database.env.DATABASE_URL!) } })
  const { res, spans, server } = await spansOf(() => th.app.inject({ url: '/api/plugins/traced/tx', headers: { authorization: `Bearer ${reader}` } }))
  t.equal(res.statusCode, 200)
  const transaction = spans.find((s) => s.name === 'tenant transaction')
  t.equal(parentOf(transaction!), server.spanContext().spanId)
  const inside = statements(spans).find((s) => /inside/.test(String(s.attributes['db.query.text'])))
  t.match(inside?.attributes, { 'db.namespace': 't_acme', 'server.port': bouncer.port }, "the statement's span, through PgBouncer's port")
  t.equal(parentOf(inside!), spans.find((s) => s.name === 'withTenantTx')!.spanContext().spanId)
})
