// Input a caller controls never becomes a 500: data the database refuses, requests the HTTP parser
// refuses, bodies that are not UTF-8 JSON, tenant domains that are not tenants' host names. Each
// answers a 4xx in the one error shape, and no log line carries the request's data. Failed
// authentications are braked, and a JWT minted for the future is refused.
import net from 'node:net'
import { SignJWT } from 'jose'
import t from 'tap'
import { JwtVerifier } from '../src/access/jwt.ts'
import { startTestHost, TEST_ADMIN_TOKEN } from '../src/testing/host.ts'
import { createNoteTable, noteRoutes } from './helpers/notes.ts'
import { assertProblem } from './helpers/problem.ts'

const admin = { authorization: `Bearer ${TEST_ADMIN_TOKEN}` }
const th = await startTestHost({ tenantRoutes: noteRoutes })
t.teardown(th.close)
const acme = await th.createTenant('acme')
await createNoteTable(th.host, acme.id)
const asAcme = { ...admin, 'x-tenant': 'acme' }

/** The log lines of one request, but its access line (which names its URL, as access logs do). */
const linesOf = (requestId: string | string[] | undefined) => th.logs.filter((l) => l.reqId === requestId && l.msg !== 'request completed')

t.test('an empty body is no body, whatever its content type says', async (t) => {
  const json = { ...asAcme, 'content-type': 'application/json' }
  const items = '/api/plugins/inventory/items'
  const { id } = (await th.app.inject({ method: 'POST', url: items, headers: asAcme, payload: { name: 'kept for now' } })).json()
  for (const method of ['POST', 'PATCH'] as const) {
    const res = await th.app.inject({ method, url: method === 'POST' ? items : `${items}/${id}`, headers: json, payload: '' })
    const problem = assertProblem(t, res, 400, 'VALIDATION_FAILED')
    t.match(problem.errors, [{ path: '/body' }], `${method} with no body, on a route that needs one: the missing body is named`)
  }
  const deleted = await th.app.inject({ method: 'DELETE', url: `${items}/${id}`, headers: json, payload: '' })
  t.equal(deleted.statusCode, 204, 'DELETE with content-type: application/json and no body: a route that takes no body accepts it')
  t.equal((await th.app.inject({ url: `${items}/${id}`, headers: asAcme })).statusCode, 404, 'and it did delete')
  assertProblem(t, await th.app.inject({ method: 'POST', url: items, headers: json, payload: ' ' }), 400, 'MALFORMED_JSON')
})

t.test('data the database refuses answers 4xx with a stable code, and the log keeps no value', async (t) => {
  const cases: [string, () => Promise<any>, number, string, string][] = [
    ['a NUL in a text field', () => th.app.inject({ method: 'POST', url: '/api/plugins/inventory/items', headers: asAcme, payload: { name: 'nul\u0000-secret-value' } }), 400, 'INVALID_VALUE', 'secret-value'],
    ['an integer past int4', () => th.app.inject({ method: 'POST', url: '/api/plugins/inventory/items', headers: asAcme, payload: { name: 'big', quantity: 3_000_000_001 } }), 400, 'INVALID_VALUE', '3000000001'],
    ['an offset past bigint', () => th.app.inject({ url: '/api/plugins/inventory/items?offset=100000000000000000000', headers: asAcme }), 400, 'INVALID_VALUE', '100000000000000000000'],
    ['a CHECK violation', () => th.app.inject({ method: 'POST', url: '/notes', headers: { 'x-tenant': 'acme' }, payload: { body: 'forbidden-secret-value' } }), 422, 'CHECK_VIOLATION', 'secret-value'],
    ['a NUL in a tenant name', () => th.app.inject({ method: 'POST', url: '/api/admin/tenants', headers: admin, payload: { code: 'nul', name: 'N\u0000secret-value' } }), 400, 'INVALID_VALUE', 'secret-value'],
    ['a NUL in a key name', () => th.app.inject({ method: 'POST', url: '/api/admin/tenants/acme/keys', headers: admin, payload: { name: 'k\u0000secret-value' } }), 400, 'INVALID_VALUE', 'secret-value'],
  ]
  for (const [what, send, status, code, value] of cases) {
    const res = await send()
    assertProblem(t, res, status, code)
    const lines = JSON.stringify(linesOf(res.headers['x-request-id']))
    t.ok(lines.length > 2, `${what}: the refusal is logged`)
    t.notMatch(lines, value, `${what}: no log line of the request carries its data`)
  }
  t.same((await th.app.inject({ url: '/notes', headers: { 'x-tenant': 'acme' } })).json().notes, [], 'nothing was written')
})

/** One raw request over a socket: what a client that does not speak HTTP well gets back. */
async function raw(port: number, request: string) {
  return new Promise<{ status: number; type: string; body: any }>((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1')
    let data = ''
    socket.on('data', (chunk) => (data += chunk))
    const done = () => {
      const [head, ...rest] = data.split('\r\n\r\n')
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1])
      const type = /content-type: ([^\r\n]+)/i.exec(head)?.[1] ?? ''
      try {
        resolve({ status, type, body: JSON.parse(rest.join('\r\n\r\n')) })
      } catch (err) {
        reject(new Error(`not JSON: ${JSON.stringify(data.slice(0, 300))}`))
      }
    }
    socket.on('end', done)
    socket.on('error', reject)
    socket.write(request)
    setTimeout(() => socket.destroy(), 1000).unref()
    socket.on('close', () => data && done())
  })
}

t.test('requests the HTTP parser or the router refuse answer problem+json', async (t) => {
  const server = await startTestHost({ tenantRoutes: noteRoutes })
  t.teardown(server.close)
  await server.app.listen({ port: 0, host: '127.0.0.1' })
  const port = (server.app.server.address() as net.AddressInfo).port
  const cases: [string, string, number, string][] = [
    ['%ff in the path', 'GET /api/plugins/inventory/%ff HTTP/1.1\r\nHost: x\r\n\r\n', 400, 'BAD_REQUEST'],
    ['a lone % in the path', 'GET /api/% HTTP/1.1\r\nHost: x\r\n\r\n', 400, 'BAD_REQUEST'],
    ['a bad request line', 'GARBAGE\r\n\r\n', 400, 'BAD_REQUEST'],
    ['two Content-Lengths', 'POST /notes HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}', 400, 'BAD_REQUEST'],
    ['Content-Length with Transfer-Encoding', 'POST /notes HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400, 'BAD_REQUEST'],
    ['CR in a header', 'GET /health/live HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n', 400, 'BAD_REQUEST'],
    ['HTTP/1.1 without Host', 'GET /health/live HTTP/1.1\r\n\r\n', 400, 'BAD_REQUEST'],
    ['a 100 KB URL', `GET /${'a'.repeat(100_000)} HTTP/1.1\r\nHost: x\r\n\r\n`, 431, 'HEADERS_TOO_LARGE'],
  ]
  for (const [what, request, status, code] of cases) {
    const res = await raw(port, request)
    t.equal(res.status, status, what)
    t.equal(res.type, 'application/problem+json; charset=utf-8', `${what}: problem+json`)
    t.match(res.body, { type: `urn:plinth:error:${code}`, status, error: code, requestId: String }, what)
  }
})

t.test('JSON bodies are UTF-8: invalid bytes are refused, other charsets too', async (t) => {
  const invalid = Buffer.concat([Buffer.from('{"body":"caf'), Buffer.from([0xc3, 0x28]), Buffer.from('"}')])
  const bad = await th.app.inject({ method: 'POST', url: '/notes', headers: { 'x-tenant': 'acme', 'content-type': 'application/json' }, payload: invalid })
  assertProblem(t, bad, 400, 'MALFORMED_JSON')
  const utf16 = await th.app.inject({
    method: 'POST',
    url: '/notes',
    headers: { 'x-tenant': 'acme', 'content-type': 'application/json; charset=utf-16' },
    payload: Buffer.from('{"body":"x"}', 'utf16le'),
  })
  assertProblem(t, utf16, 415, 'UNSUPPORTED_MEDIA_TYPE')
  const fine = await th.app.inject({ method: 'POST', url: '/notes', headers: { 'x-tenant': 'acme', 'content-type': 'application/json; charset=UTF-8' }, payload: '{"body":"café"}' })
  t.equal(fine.statusCode, 201, 'UTF-8, said or not, is fine')
  t.equal(fine.json().body, 'café')
  const poisoned = await th.app.inject({ method: 'POST', url: '/notes', headers: { 'x-tenant': 'acme', 'content-type': 'application/json' }, payload: '{"body":"x","__proto__":{"admin":true}}' })
  t.equal(poisoned.statusCode, 400, 'prototype poisoning is still refused')
})

t.test("tenant domains are tenants' host names", async (t) => {
  const create = (domain: unknown) => th.app.inject({ method: 'POST', url: '/api/admin/tenants', headers: admin, payload: { code: 'dom', name: 'Dom', domain } })
  for (const domain of ['127.0.0.1', '10.0.0.7', 'localhost', '5']) {
    const res = await create(domain)
    assertProblem(t, res, 400, 'VALIDATION_FAILED')
    t.match(res.json().errors, [{ path: '/domain' }], `${domain} is refused`)
  }
  const number = await create(5)
  assertProblem(t, number, 400, 'VALIDATION_FAILED')
  t.match(number.json().errors, [{ path: '/body/domain' }], 'the number 5 is not taken for the string "5"')
  t.equal((await create('dom.example.com')).statusCode, 201)
})

t.test('failed authentications are braked per address, and their log lines stay few', async (t) => {
  const braked = await startTestHost({ env: { PLINTH_AUTH_FAILURE_LIMIT: '5' } })
  t.teardown(braked.close)
  const statuses: number[] = []
  let retryAfter: string | undefined
  for (let i = 0; i < 30; i++) {
    const res = await braked.app.inject({ url: '/api/admin/tenants', headers: { authorization: `Bearer wrong-token-${i}-0123456789abcdef` } })
    statuses.push(res.statusCode)
    if (res.statusCode === 429) {
      retryAfter = res.headers['retry-after'] as string
      t.equal(res.json().error, 'TOO_MANY_FAILED_ATTEMPTS')
    }
  }
  t.same(statuses, [...Array(5).fill(401), ...Array(25).fill(429)], '401 five times, then 429')
  t.ok(Number(retryAfter) >= 1 && Number(retryAfter) <= 10, `Retry-After ${retryAfter}`)
  t.equal(braked.logs.filter((l) => l.msg === 'admin authentication failed').length, 5, 'one warn line a failure, up to the limit')
  const key = (await braked.host.createKey((await braked.createTenant('acme')).code, 'k', ['admin'])).key
  const sameAddress = await braked.app.inject({ url: '/api/me', headers: { authorization: `Bearer ${key}` } })
  t.equal(sameAddress.statusCode, 429, 'while braked, the address is refused before anything it sends is checked')
  t.equal((await braked.app.inject({ url: '/api/me', headers: { authorization: `Bearer ${key}` }, remoteAddress: '10.1.2.3' })).statusCode, 200, 'other addresses are not')
  // Nor does it learn whether a guessed admin or metrics token is right: the right one is refused too.
  const admin = { authorization: `Bearer ${TEST_ADMIN_TOKEN}` }
  t.equal((await braked.app.inject({ url: '/api/admin/tenants', headers: admin })).statusCode, 429, 'the right admin token, from a braked address: 429')
  t.equal((await braked.app.inject({ url: '/metrics', headers: admin })).statusCode, 429, 'the right metrics token, from a braked address: 429')
  t.equal((await braked.app.inject({ url: '/api/admin/tenants', headers: admin, remoteAddress: '10.1.2.3' })).statusCode, 200, 'from another address: 200')
})

t.test('a JWT issued in the future is refused', async (t) => {
  const secret = 'a-shared-secret-of-at-least-32-characters'
  const verifier = await JwtVerifier.create({ secret })
  const sign = (iat: number, sub = 'alice') =>
    new SignJWT({ tenant: 'acme' }).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setIssuedAt(iat).setExpirationTime('2d').sign(new TextEncoder().encode(secret))
  const now = Math.floor(Date.now() / 1000)
  t.same(await verifier.verify(await sign(now)), { subject: 'alice', tenantCode: 'acme' })
  t.same(await verifier.verify(await sign(now + 10)), { subject: 'alice', tenantCode: 'acme' }, 'within the clock skew')
  t.same(await verifier.verify(await sign(now + 86_400)), { reason: 'issued in the future' })
  t.same(await verifier.verify(await sign(now, 'ali\u0000ce')), { reason: 'malformed token' }, 'a subject with a NUL')
})
