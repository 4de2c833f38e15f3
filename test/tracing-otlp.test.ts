// The built host with PLINTH_OTEL=1, as an operator runs it, sending its spans over OTLP/HTTP to a
// collector stand-in (an HTTP server here that decodes the JSON payload): they arrive, in one
// trace per request, with the service name the standard variable gave. And with tracing off
// (the default) no OpenTelemetry code is imported by plinth's modules.
import fs from 'node:fs/promises'
import http from 'node:http'
import path from 'node:path'
import t from 'tap'
import { PROJECT_ROOT } from '../src/app/paths.ts'
import { createTestDatabase } from '../src/testing/database.ts'
import { TEST_ADMIN_TOKEN } from '../src/testing/host.ts'
import { postgresPassOnly } from './helpers/passes.ts'
import { startServer } from './helpers/process.ts'

interface OtlpSpan {
  traceId: string
  spanId: string
  parentSpanId?: string
  name: string
  kind: number
  attributes: { key: string; value: Record<string, unknown> }[]
}

t.test('spans reach an OTLP/HTTP collector from the built host', postgresPassOnly, async (t) => {
  const received: { service: unknown; spans: OtlpSpan[] }[] = []
  const collector = http.createServer((request, response) => {
    let body = ''
    request.on('data', (chunk) => (body += chunk))
    request.on('end', () => {
      t.equal(request.url, '/v1/traces')
      for (const resourceSpans of JSON.parse(body).resourceSpans ?? []) {
        const service = resourceSpans.resource.attributes.find((a: any) => a.key === 'service.name')?.value.stringValue
        received.push({ service, spans: resourceSpans.scopeSpans.flatMap((s: any) => s.spans) })
      }
      response.writeHead(200, { 'content-type': 'application/json' }).end('{}')
    })
  })
  await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve))
  t.teardown(() => collector.close())
  const database = await createTestDatabase()
  t.teardown(database.drop)
  const server = await startServer(
    {
      ...database.env,
      PLINTH_ADMIN_TOKEN: TEST_ADMIN_TOKEN,
      PLINTH_OTEL: '1',
      OTEL_SERVICE_NAME: 'plinth-e2e',
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${(collector.address() as { port: number }).port}`,
      OTEL_BSP_SCHEDULE_DELAY: '100',
    },
    'dist/main.js',
  )
  t.teardown(() => server.child.kill('SIGKILL'))
  const admin = { authorization: `Bearer ${TEST_ADMIN_TOKEN}` }
  t.equal((await fetch(`${server.url}/api/admin/tenants`, { method: 'POST', headers: { ...admin, 'content-type': 'application/json' }, body: JSON.stringify({ code: 'acme', name: 'Acme' }) })).status, 201)
  const items = await fetch(`${server.url}/api/plugins/inventory/items`, { headers: { ...admin, 'x-tenant': 'acme' } })
  t.equal(items.status, 200)
  server.child.kill('SIGTERM')
  t.equal((await server.exit).code, 0, 'stops cleanly, its spans sent first')

  const spans = received.flatMap((r) => r.spans)
  t.ok(received.every((r) => r.service === 'plinth-e2e'), 'the service name OTEL_SERVICE_NAME gave')
  const request = spans.find((s) => s.name === 'GET /api/plugins/inventory/items')
  t.ok(request, 'the request span arrived')
  const attribute = (span: OtlpSpan, key: string) => span.attributes.find((a) => a.key === key)?.value
  t.same(attribute(request!, 'plinth.tenant'), { stringValue: 'acme' })
  const trace = spans.filter((s) => s.traceId === request!.traceId)
  t.ok(trace.some((s) => s.name === 'tenant transaction' && s.parentSpanId === request!.spanId), 'with its tenant transaction')
  t.ok(trace.some((s) => s.name === 'SELECT t_acme'), 'and its statements')
  t.ok(spans.some((s) => s.name === 'POST /api/admin/tenants'), 'the admin call too')
})

t.test('tracing off: no module of plinth imports OpenTelemetry but the ones loaded when it is on', async (t) => {
  const files: string[] = []
  const walk = async (dir: string) => {
    for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name)
      if (entry.isDirectory()) await walk(full)
      else if (entry.name.endsWith('.ts')) files.push(full)
    }
  }
  await walk(path.join(PROJECT_ROOT, 'src'))
  const loadedWhenOn = ['src/http/tracing.ts', 'src/platform/otel/pg-client.ts', 'src/platform/otel/setup.ts']
  const importing: string[] = []
  for (const file of files) {
    const text = await fs.readFile(file, 'utf8')
    const name = path.relative(PROJECT_ROOT, file)
    if (/^import [^;]*from '@opentelemetry\//m.test(text)) importing.push(name)
    for (const [, spec] of text.matchAll(/^import [^;]*? from '(\.[^']+)'/gm)) {
      const target = path.relative(PROJECT_ROOT, path.resolve(path.dirname(file), spec))
      if (loadedWhenOn.includes(target) && !loadedWhenOn.includes(name)) t.fail(`${name} imports ${target} statically: it would load with tracing off`)
    }
  }
  t.same(importing.sort(), loadedWhenOn, 'OpenTelemetry is imported by these alone, and they only by a dynamic import when PLINTH_OTEL=1')
})
