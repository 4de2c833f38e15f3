// The promise "Express's router and response, as Express documents them", held to Express's own
// test suite: each case below is one of expressjs/express's tests (test/res.*.js, test/req.*.js,
// test/app.param.js, test/app.router.js, app.route, app.all, app.head, app.use), run against a
// module (test/fixtures/stranger/expresscases) loaded from a folder outside the project, with the
// answer Express's test expects. The last test holds the router's refusals: what plinth's router
// does not serve fails that module alone, with a reason that names the declaration.
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import t from 'tap'
import { PROJECT_ROOT } from '../src/app/paths.ts'
import { startTestHost, TEST_ADMIN_TOKEN } from '../src/testing/host.ts'
import { assertProblem } from './helpers/problem.ts'

const root = await fs.mkdtemp(path.join(os.tmpdir(), 'plinth-express-cases-'))
t.teardown(() => fs.rm(root, { recursive: true, force: true }))
await fs.cp(path.join(PROJECT_ROOT, 'test/fixtures/stranger/expresscases'), path.join(root, 'expresscases'), { recursive: true })
const th = await startTestHost({ env: { PLINTH_MODULE_DIRS: root, PLINTH_MODULES: 'expresscases' } })
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

t.test('OPTIONS, answered by the router (test/app.options.js)', async (t) => {
  const options = (url: string) => th.app.inject({ method: 'OPTIONS', url: `/api/plugins/expresscases${url}`, headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}`, 'x-tenant': 'acme' } })
  const users = await options('/options/users')
  t.equal(users.statusCode, 200, 'should default to the routes defined')
  t.equal(users.headers.allow, 'GET, HEAD, PUT')
  t.equal(users.body, 'GET, HEAD, PUT', 'the same list as the body')
  t.equal(users.headers['content-type'], 'text/plain; charset=utf-8')
  t.equal(users.headers['x-hit'], '1', 'should not be affected by app.all: all() runs, and adds no method')
  const override = await options('/options/override')
  t.equal(override.headers.allow, 'GET', "app.options() overrides the router's answer")
  t.equal(override.body, 'GET')
  t.equal((await options('/options/other')).statusCode, 404, 'should not respond if the path is not defined')
})

t.test('one router.route() is one route (test/Route.js)', async (t) => {
  t.equal((await call('/route/errors')).body, 'a foobar', 'should handle errors via arity 4 functions: the error skips the plain function and reaches the handler of a later .all()')
  t.equal((await call('/route/throws')).body, 'a foobar', 'should handle throw')
  t.equal((await call('/route/throw-in-handler')).body, 'oops', 'should handle throwing inside error handlers')
  t.equal((await call('/route/fallthrough')).body, 'abc', 'should allow fallthrough')
})

t.test('res.format with no acceptable type (test/res.format.js)', async (t) => {
  const html = await call('/format/none', { headers: { accept: 'foo/bar' } })
  t.equal(html.statusCode, 406, 'the error carries status 406')
  t.equal(html.body, 'Supports: text/plain, text/html, application/json', 'and the types, for the error handler')
  const extensions = await call('/format/extensions', { headers: { accept: 'foo/bar' } })
  t.equal(extensions.statusCode, 406)
  t.equal(extensions.body, 'Supports: text/plain, text/html, application/json', 'extensions as their canonical types')
})

t.test('res.cookie refuses invalid options (test/res.cookie.js)', async (t) => {
  assertProblem(t, await call('/cookie/bad-max-age'), 500, 'INTERNAL_ERROR')
  t.match(th.logs.at(-2)?.err?.message, /option maxAge is invalid/, 'should throw an error with invalid maxAge')
  assertProblem(t, await call('/cookie/bad-expires'), 500, 'INTERNAL_ERROR')
  t.match(th.logs.at(-2)?.err?.message, /option expires is invalid/, 'should throw on invalid date')
  const none = await call('/cookie/no-max-age')
  t.equal(none.statusCode, 200)
  t.equal(none.headers['set-cookie'], 'name=tobi; Path=/', 'maxAge: undefined is ignored')
})

t.test('204, 205 and 304 lose their body and what would describe it (test/res.send.js)', async (t) => {
  for (const status of [204, 304]) {
    const res = await call(`/send/${status}`)
    t.equal(res.statusCode, status)
    t.equal(res.body, '', `${status}: no body`)
    for (const header of ['content-type', 'content-length', 'transfer-encoding']) t.equal(res.headers[header], undefined, `${status}: no ${header}`)
  }
  const reset = await call('/send/205')
  t.equal(reset.statusCode, 205)
  t.equal(reset.body, '')
  t.equal(reset.headers['content-length'], '0', '205: Content-Length 0')
  t.equal(reset.headers['transfer-encoding'], undefined, '205: no Transfer-Encoding')
})

t.test('a redirect to a client that accepts neither text nor HTML (test/res.redirect.js)', async (t) => {
  const res = await call('/redirect/plain', { headers: { accept: 'application/octet-stream' } })
  t.equal(res.statusCode, 302)
  t.equal(res.headers.location, 'http://google.com')
  t.equal(res.headers['content-length'], '0')
  t.equal(res.headers['content-type'], undefined, 'no Content-Type')
  t.equal(res.body, '', 'no body')
})

t.test('methods, router.route and router.all (test/app.router.js, test/app.route.js, test/app.all.js)', async (t) => {
  for (const method of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const) {
    const res = await th.app.inject({ method, url: '/api/plugins/expresscases/methods', headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}`, 'x-tenant': 'acme' } })
    t.equal(res.statusCode, 200, method)
    t.equal(res.headers['x-method'], method, `${method} reached its own handler`)
  }
  for (const method of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const) {
    const res = await th.app.inject({ method, url: '/api/plugins/expresscases/all/tobi', headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}`, 'x-tenant': 'acme' } })
    t.equal(res.body, method, `router.all answers ${method}`)
  }
  const before = (await call('/all/calls')).json()
  const passedOn = await th.app.inject({ method: 'DELETE', url: '/api/plugins/expresscases/all/counted/tobi', headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}`, 'x-tenant': 'acme' } })
  assertProblem(t, passedOn, 404, 'NOT_FOUND')
  t.equal((await call('/all/calls')).json(), before + 1, 'the router.all callback ran once for the request')
})

t.test("router.use() for every route, and a module's root path", async (t) => {
  for (const url of ['/', '']) {
    const root = await call(url)
    t.equal(root.body, 'root', `GET /api/plugins/expresscases${url}`)
    t.equal(root.headers['x-cases'], 'yes', 'the middleware ran')
  }
  t.equal((await call('/set/type')).headers['x-cases'], 'yes')
})

t.test('arrays of functions, nested or not (test/app.use.js, test/Route.js)', async (t) => {
  const res = await call('/arrays')
  t.equal(res.body, 'arrays')
  for (const n of [1, 2, 3, 4]) t.equal(res.headers[`x-fn-${n}`], 'hit', `function ${n} ran`)
})

t.test('HEAD (test/app.head.js)', async (t) => {
  const head = (url: string) => th.app.inject({ method: 'HEAD', url: `/api/plugins/expresscases${url}`, headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}`, 'x-tenant': 'acme' } })
  const headDefault = await head('/head/default')
  const getDefault = await call('/head/default')
  t.equal(headDefault.statusCode, 200, 'HEAD defaults to GET')
  t.equal(headDefault.body, '')
  for (const name of ['x-method', 'content-type', 'content-length']) t.equal(headDefault.headers[name], getDefault.headers[name], `the same ${name} as GET`)
  t.equal((await head('/head/declared')).headers['x-method'], 'head', 'a declared HEAD overrides')
  t.equal((await call('/head/declared')).headers['x-method'], 'get')
  const passes = await head('/head/passes')
  t.equal(passes.headers['x-head'], 'seen')
  t.equal(passes.headers['x-method'], 'get', "a declared HEAD that calls next() reaches GET's handler, not POST's")
})

t.test('next(), next("route") and next(err) (test/app.router.js)', async (t) => {
  t.same((await call('/lookup')).json(), ['/lookup', '/lookup 2'], 'next() continues the lookup')
  const jumped = await call('/jump')
  t.equal(jumped.headers['x-hit'], '1')
  t.equal(jumped.body, 'success', "next('route') jumps to the next route")
  assertProblem(t, await call('/break'), 500, 'INTERNAL_ERROR')
  t.match(th.logs.at(-2)?.err?.message, /^fail$/, 'next(err) breaks out: the later route never ran')
  t.equal((await call('/same-route')).body, 'route go boom!', 'an error handler in the same route is called')
})

t.test('promise support (test/app.router.js)', async (t) => {
  t.equal((await call('/promise/rejected')).body, 'saw Error: Rejected promise', 'a rejected promise without a value is an error')
  const resolved = await call('/promise/resolved')
  t.equal(resolved.statusCode, 200)
  t.equal(resolved.body, 'saw GET /', 'a resolved promise is ignored')
})

t.test(':name?, *name and * (test/app.router.js)', async (t) => {
  t.equal((await call('/user/tj')).body, 'viewing tj', 'an optional parameter may be absent')
  t.equal((await call('/user/tj/edit')).body, 'editing tj', 'and is captured when present')
  t.equal((await call('/files/122')).body, '122', '*name matches one segment')
  t.equal((await call('/files/1/2/3/4')).body, '1/2/3/4', 'and many')
  t.equal((await call('/legacy/a/b')).body, 'a/b', "a bare * is req.params[0], the rest of the path (Express 4)")
})

t.test('router.use(path) (test/app.use.js, test/req.baseUrl.js)', async (t) => {
  const base = '/api/plugins/expresscases'
  t.equal((await call('/blog')).headers['x-blog'], `${base}/blog /`, 'the mount itself: req.path is /')
  t.equal((await call('/blog/post/1')).headers['x-blog'], `${base}/blog /post/1`, 'under it: req.baseUrl is the mount, req.path the rest')
  const blogs = await call('/blogs')
  t.equal(blogs.body, 'ok')
  t.notOk(blogs.headers['x-blog'], 'a prefix applies at a segment boundary only')
  t.equal((await call('/forum/topics')).headers['x-forum'], 'hit', 'a trailing slash on the path is ignored')
})

t.test('route options: once per path and method, all() serving the methods declared without them', async (t) => {
  const search = (method: 'GET' | 'POST', query: string) => call(`/search${query}`, { method })
  t.equal((await search('GET', '?page=1')).body, 'all', "GET's own options; the chain runs in declaration order")
  assertProblem(t, await search('GET', '?q=x'), 400, 'VALIDATION_FAILED')
  t.equal((await search('POST', '?q=x')).body, 'all', "POST takes all()'s options")
  assertProblem(t, await search('POST', '?page=1'), 400, 'VALIDATION_FAILED')
})

t.test('router.param only for the parameters a path has (test/app.param.js)', async (t) => {
  const before = (await call('/items-count')).json()
  t.equal((await call('/items/7')).json(), before + 1, 'the callback ran for :item')
  t.equal((await call('/items-count')).json(), before + 1, 'and not for a path without it')
})

t.test('req.db where it is not open says why, in the log', async (t) => {
  const inGuard = await call('/db/in-guard')
  assertProblem(t, inGuard, 500, 'INTERNAL_ERROR')
  t.match(th.logs.find((l) => l.reqId === inGuard.headers['x-request-id'] && l.err)?.err?.message, /^req\.db is not open here: a route's guards run before the request takes a database connection/)
  const after = await call('/db/after-answer')
  t.same(after.json(), { answered: true }, 'the answer stands')
  await new Promise((resolve) => setTimeout(resolve, 200))
  const logged = th.logs.find((l) => l.reqId === after.headers['x-request-id'] && l.err)
  t.equal(logged?.msg, 'module code failed after its response was sent')
  t.match(logged?.err?.message, /^req\.db was used after the request's transaction ended \(its response was sent\)/)
})

t.test('what a module may not declare fails that module alone, with the reason', async (t) => {
  const declarations: Record<string, string> = {
    'not-a-function': `r.get('/x', 3)`,
    'null-handler': `r.get('/x', null)`,
    'no-handler': `r.get('/x')`,
    'relative-path': `r.get('x', (req, res) => res.end())`,
    'inner-optional': `r.get('/a/:b?/c', (req, res) => res.end())`,
    'inner-wildcard': `r.get('/a/*/b', (req, res) => res.end())`,
    'regexp-path': `r.get('/a(b)?', (req, res) => res.end())`,
    'use-parameter': `r.use('/a/:id', (req, res, next) => next())`,
    'use-relative': `r.use('a', (req, res, next) => next())`,
    'param-unnamed': `r.param('', (req, res, next) => next())`,
    'param-not-function': `r.param('id', 'nope')`,
    'route-relative': `r.route('x').get((req, res) => res.end())`,
    'array-of-paths': `r.get('/x', ['/y'], (req, res) => res.end())`,
    'route-clash': `r.get('/rooms/:id', (req, res) => res.end()); r.delete('/rooms/:roomId', (req, res) => res.end())`,
    'two-options': `r.get('/x', { schema: {} }, (req, res) => res.end()); r.get('/x', { schema: {} }, (req, res) => res.end())`,
    'unknown-method': `r.propfind('/x', (req, res) => res.end())`,
    fine: `r.get('/x', (req, res) => res.end('fine')); r.route('/y').get((req, res) => res.end('y')); return Promise.resolve(r.get('/z', (req, res) => res.end('z')))`,
  }
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'plinth-declarations-'))
  t.teardown(() => fs.rm(root, { recursive: true, force: true }))
  for (const [id, body] of Object.entries(declarations)) {
    await fs.mkdir(path.join(root, id))
    const meta = `{ id: '${id}', name: '${id}', version: '1.0.0', api: '1.x' }`
    await fs.writeFile(path.join(root, id, 'module.config.js'), `export default { ...${meta}, permissions: [] }\n`)
    await fs.writeFile(path.join(root, id, 'plugin.js'), `export const permissions = []\nexport default { meta: ${meta}, register(ctx) { const r = ctx.router; ${body} } }\n`)
  }
  const host = await startTestHost({ env: { PLINTH_MODULE_DIRS: root, PLINTH_MODULES: Object.keys(declarations).join(',') } })
  t.teardown(host.close)
  const reasons = Object.fromEntries(host.host.modules.map((m) => [m.id, m.status === 'loaded' ? 'loaded' : m.reason]))
  t.match(reasons, {
    'not-a-function': /router\.get\("\/x"\): argument 1 is number, not a function/,
    'null-handler': /argument 1 is null, not a function/,
    'no-handler': /router\.get\("\/x"\) needs at least one handler function/,
    'relative-path': /router\.get\("x"\): the path must be a string starting with "\/"/,
    'inner-optional': /only the last parameter may be optional/,
    'inner-wildcard': /a wildcard must be the last segment/,
    'regexp-path': /"a\(b\)\?" uses path syntax plinth does not serve/,
    'use-parameter': /router\.use\("\/a\/:id"\): a use\(\) path is a static prefix/,
    'use-relative': /router\.use\("a"\): a use\(\) path is a static prefix/,
    'param-unnamed': /router\.param\(name, fn\): name must be a parameter name/,
    'param-not-function': /router\.param\("id"\): argument 1 is string, not a function/,
    'route-relative': /router\.route\("x"\): the path must be a string starting with "\/"/,
    'array-of-paths': /router\.get\("\/x"\): argument 1 is string, not a function/,
    'route-clash': /routes "\/rooms\/:id" and "\/rooms\/:roomId" match the same requests/,
    'two-options': /router\.get\("\/x"\) is declared more than once with options/,
    'unknown-method': /router\.propfind is not supported by plinth's router; it has use, param, route, get, post/,
    fine: 'loaded',
  })
  await host.createTenant('acme')
  const headers = { authorization: `Bearer ${TEST_ADMIN_TOKEN}`, 'x-tenant': 'acme' }
  t.equal((await host.app.inject({ url: '/api/plugins/fine/x', headers })).body, 'fine', 'the module without mistakes serves')
  t.equal((await host.app.inject({ url: '/api/plugins/fine/y', headers })).body, 'y')
  t.equal((await host.app.inject({ url: '/api/plugins/fine/z', headers })).body, 'z', 'register may return (a promise of) the router, as chained calls do')
  assertProblem(t, await host.app.inject({ url: '/api/plugins/not-a-function/x', headers }), 503, 'MODULE_UNAVAILABLE')
})
