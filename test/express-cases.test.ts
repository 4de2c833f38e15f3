// The promise "Express's router and response, as Express documents them", held to Express's own
// test suite: each case below is one of expressjs/express's tests (test/res.*.js, test/req.*.js,
// test/app.param.js, test/app.router.js), run against a module (test/fixtures/stranger/expresscases)
// loaded from a folder outside the project, with the answer Express's test expects.
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import t from 'tap'
import { PROJECT_ROOT } from '../src/host/host.ts'
import { startTestHost, TEST_ADMIN_TOKEN } from '../src/testing/host.ts'
import { assertProblem } from './helpers/problem.ts'

const root = await fs.mkdtemp(path.join(os.tmpdir(), 'plinth-express-cases-'))
t.teardown(() => fs.rm(root, { recursive: true, force: true }))
await fs.cp(path.join(PROJECT_ROOT, 'test/fixtures/stranger/expresscases'), path.join(root, 'expresscases'), { recursive: true })
const th = await startTestHost({ env: { PLINTH_PLUGIN_DIRS: root, PLINTH_PLUGINS: 'expresscases' } })
t.teardown(th.close)
await th.createTenant('acme')

const call = (url: string, init: { method?: 'GET' | 'POST'; headers?: Record<string, string>; payload?: string } = {}) =>
  th.app.inject({
    method: init.method ?? 'GET',
    url: `/api/plugins/expresscases${url}`,
    headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}`, 'x-tenant': 'acme', ...init.headers },
    payload: init.payload,
  })

t.test('res.set (test/res.set.js)', async (t) => {
  t.equal((await call('/set/type')).headers['content-type'], 'text/x-foo; charset=utf-8')
  const number = await call('/set/number')
  t.equal(number.headers['x-number'], '123')
  t.equal(number.body, 'string', 'coerced to a string')
  const array = await call('/set/array')
  t.same(array.headers['x-numbers'], ['123', '456'])
  t.equal(array.body, '["123","456"]')
  t.equal((await call('/set/charset-kept')).headers['content-type'], 'text/html; charset=lol', 'a charset already set is kept')
  assertProblem(t, await call('/set/type-array'), 500, 'INTERNAL_ERROR')
  t.match(th.logs.at(-2)?.err?.message, /Content-Type cannot be set to an Array/)
  const object = await call('/set/object')
  t.equal(object.headers['x-foo'], 'bar')
  t.equal(object.headers['x-bar'], 'baz')
})

t.test('res.type (test/res.type.js)', async (t) => {
  t.equal((await call('/type/file')).headers['content-type'], 'text/javascript; charset=utf-8')
  t.equal((await call('/type/unknown')).headers['content-type'], 'application/octet-stream')
  t.equal((await call('/type/full')).headers['content-type'], 'application/vnd.amazon.ebook')
  t.equal((await call('/type/dot')).headers['content-type'], 'application/json; charset=utf-8')
})

t.test('res.json (test/res.json.js)', async (t) => {
  const kept = await call('/json/keep-type')
  t.equal(kept.headers['content-type'], 'application/vnd.example+json; charset=utf-8')
  t.equal(kept.body, '{"hello":"world"}')
  for (const [url, body] of [
    ['/json/null', 'null'],
    ['/json/number', '300'],
    ['/json/string', '"str"'],
    ['/json/array', '["foo","bar","baz"]'],
  ]) {
    const res = await call(url)
    t.equal(res.headers['content-type'], 'application/json; charset=utf-8', url)
    t.equal(res.body, body, url)
  }
})

t.test('res.send (test/res.send.js)', async (t) => {
  t.equal((await call('/send/nothing')).body, '')
  const nothing = await call('/send/null')
  t.equal(nothing.body, '')
  t.equal(nothing.headers['content-length'], '0')
  const number = await call('/send/number')
  t.equal(number.headers['content-type'], 'application/json; charset=utf-8')
  t.equal(number.body, '1000')
  const html = await call('/send/html')
  t.equal(html.headers['content-type'], 'text/html; charset=utf-8')
  t.equal(html.body, '<p>hey</p>')
  t.equal((await call('/send/keep-type')).headers['content-type'], 'text/plain; charset=utf-8')
  t.equal((await call('/send/charset')).headers['content-type'], 'text/plain; charset=utf-8', 'the charset becomes utf-8')
  const buffer = await call('/send/buffer')
  t.equal(buffer.headers['content-type'], 'application/octet-stream')
  t.equal(buffer.body, 'hello')
})

t.test('res.sendStatus and res.status (test/res.sendStatus.js, test/res.status.js)', async (t) => {
  const created = await call('/status/created')
  t.equal(created.statusCode, 201)
  t.equal(created.body, 'Created')
  const unknown = await call('/status/599')
  t.equal(unknown.statusCode, 599)
  t.equal(unknown.body, '599')
  assertProblem(t, await call('/status/bad'), 500, 'INTERNAL_ERROR')
  t.match(th.logs.at(-2)?.err?.message, /Invalid status code: "200"\. Status code must be an integer/)
})

t.test('res.location and res.redirect (test/res.location.js, test/res.redirect.js)', async (t) => {
  t.equal((await call('/location/encode')).headers.location, 'https://google.com?q=%E2%98%83%20%C2%A710')
  t.equal((await call('/location/encoded')).headers.location, 'https://google.com?q=%A710', 'already-encoded sequences are left alone')
  const seeOther = await call('/redirect/303')
  t.equal(seeOther.statusCode, 303)
  t.equal(seeOther.headers.location, 'http://google.com')
  const escaped = await call('/redirect/escape', { headers: { accept: 'text/html' } })
  t.equal(escaped.headers.location, "%3Cla'me%3E")
  t.equal(escaped.body, '<!DOCTYPE html><head><title>Found</title></head><body><p>Found. Redirecting to %3Cla&#39;me%3E</p></body>')
  const xss = await call('/redirect/xss', { headers: { accept: 'text/plain, */*' } })
  t.match(xss.headers['content-type'], /plain/)
  t.equal(xss.headers.location, 'http://example.com/?param=%3Cscript%3Ealert(%22hax%22);%3C/script%3E')
  t.equal(xss.body, 'Found. Redirecting to http://example.com/?param=%3Cscript%3Ealert(%22hax%22);%3C/script%3E')
  const none = await call('/redirect/303', { headers: { accept: 'application/octet-stream' } })
  t.equal(none.body, '', 'nothing acceptable: an empty body')
})

t.test('res.append, res.cookie, res.clearCookie (test/res.append.js, test/res.cookie.js, test/res.clearCookie.js)', async (t) => {
  t.same((await call('/append/reset')).headers['set-cookie'], 'pet=tobi', 'res.set resets what res.append added')
  t.same((await call('/append/cookie')).headers['set-cookie'], ['foo=bar; Path=/', 'fizz=buzz'])
  t.equal((await call('/cookie/object')).headers['set-cookie'], 'user=j%3A%7B%22name%22%3A%22tobi%22%7D; Path=/')
  t.equal((await call('/cookie/options')).headers['set-cookie'], 'name=tobi; Path=/; HttpOnly; Secure')
  t.equal((await call('/cookie/partitioned')).headers['set-cookie'], 'name=tobi; Path=/; Partitioned')
  t.match((await call('/cookie/priority')).headers['set-cookie'], /Priority=Low/)
  assertProblem(t, await call('/cookie/signed'), 500, 'INTERNAL_ERROR')
  t.match(th.logs.at(-2)?.err?.message, /cookieParser\("secret"\) required for signed cookies/)
  t.equal((await call('/cookie/clear')).headers['set-cookie'], 'sid=; Path=/admin; Expires=Thu, 01 Jan 1970 00:00:00 GMT', 'maxAge is ignored')
})

t.test('res.attachment and res.vary (test/res.attachment.js, test/res.vary.js)', async (t) => {
  t.equal((await call('/attachment/none')).headers['content-disposition'], 'attachment')
  const image = await call('/attachment/path')
  t.equal(image.headers['content-disposition'], 'attachment; filename=image.png')
  t.equal(image.headers['content-type'], 'image/png')
  t.equal((await call('/attachment/space')).headers['content-disposition'], 'attachment; filename="my report.png"')
  t.equal((await call('/vary/twice')).headers.vary, 'Accept, Accept-Encoding')
  assertProblem(t, await call('/vary/none'), 500, 'INTERNAL_ERROR')
  t.match(th.logs.at(-2)?.err?.message, /field.*required/)
})

t.test('req.get, req.is, req.path (test/req.get.js, test/req.is.js, test/req.path.js)', async (t) => {
  t.equal((await call('/req/get', { method: 'POST', headers: { 'content-type': 'application/json' }, payload: '{}' })).body, 'application/json')
  t.equal((await call('/req/get-referrer', { headers: { referer: 'http://foobar.com' } })).body, 'http://foobar.com', 'Referrer reads Referer')
  assertProblem(t, await call('/req/get-nothing'), 500, 'INTERNAL_ERROR')
  t.match(th.logs.at(-2)?.err?.message, /name argument is required to req.get/)
  const is = await call('/req/is', { method: 'POST', headers: { 'content-type': 'application/json; charset=UTF-8' }, payload: '{}' })
  t.same(is.json(), ['json', 'application/json', false])
  t.equal((await call('/req/path/x?q=1')).body, '/req/path/x', 'the path within the module, without the query')
})

t.test('router.param (test/app.param.js)', async (t) => {
  const first = await call('/param/tj')
  t.same(first.json(), { user: 'TJ', calls: 1 }, 'the callback ran before the route, with the value')
  const skipped = await call('/param/tj/next')
  t.same(skipped.json(), { user: 'TJ', calls: 2 }, "once per request, even across next('route')")
  const refused = await call('/failing/x')
  t.equal(refused.statusCode, 422, 'an error from a param callback skips the route')
})

t.test('the router (test/app.router.js)', async (t) => {
  assertProblem(t, await call('/router/leave'), 404, 'NOT_FOUND')
  const handled = await call('/router/error')
  t.equal(handled.statusCode, 503)
  t.equal(handled.body, 'handled boom', 'plain functions are skipped while an error is pending; error handlers may pass it on')
  t.equal((await call('/router/recover')).body, 'recovered', 'an error handler that calls next() resumes the chain')
  const forbidden = await call('/router/async-throw')
  assertProblem(t, forbidden, 403, 'FORBIDDEN')
  t.equal(forbidden.json().detail, 'not allowed', 'a rejected promise is next(err), as in Express 5')
  t.same((await call('/router/wildcard/a/b/c')).json(), { rest: ['a', 'b', 'c'] }, 'Express 5 *name: the segments')
})
