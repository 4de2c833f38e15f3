// The OpenAPI 3.1 document: valid, built from every loaded module's route schemas, grouped by
// module, with Swagger UI served from the npm package.
import SwaggerParser from '@apidevtools/swagger-parser'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import t from 'tap'
import { startTestHost, TEST_ADMIN_TOKEN } from '../src/testing/host.ts'

const th = await startTestHost()
t.teardown(th.close)
const tenant = await th.createTenant('docs')

t.test('/docs/json validates and lists every module route under its module tag', async (t) => {
  const res = await th.app.inject({ url: '/docs/json' })
  t.equal(res.statusCode, 200)
  const doc = res.json()
  t.equal(doc.openapi, '3.1.0')
  await t.resolves(SwaggerParser.validate(structuredClone(doc)), 'a valid OpenAPI document')

  const loaded = th.host.modules.filter((m) => m.status === 'loaded')
  t.same(loaded.map((m) => m.id).sort(), ['inventory', 'tickets'])
  for (const module of loaded) {
    t.ok(doc.tags.some((tag: any) => tag.name === module.id), `tag ${module.id}`)
    // Hidden: the OPTIONS answer plinth adds to each path, as Express's router does.
    for (const route of module.routes.filter((r) => !r.automatic)) {
      const path = `/api/plugins/${module.id}${route.path.replace(/:([a-zA-Z]+)/g, '{$1}')}`
      const operation = doc.paths[path]?.[route.method.toLowerCase()]
      t.ok(operation, `${route.method} ${path}`)
      t.same(operation?.tags, [module.id])
    }
  }
  const create = doc.paths['/api/plugins/inventory/items'].post
  t.match(create.requestBody.content['application/json'].schema, { type: 'object', required: ['name'] }, 'the body schema is documented')
})

t.test('what a client generated from the document needs: open routes say so, defaults are optional, ids are names', async (t) => {
  const doc = (await th.app.inject({ url: '/docs/json' })).json()
  for (const [path, method] of [['/health/live', 'get'], ['/health/ready', 'get'], ['/api/plugins', 'get'], ['/', 'get'], ['/api/plugins/inventory/health', 'get']]) {
    t.same(doc.paths[path]?.[method]?.security, [], `${method.toUpperCase()} ${path} is open: security [] overrides the document's bearer requirement`)
  }
  t.same(doc.paths['/api/me'].get.security ?? doc.security, [{ bearer: [] }], '/api/me still needs a credential')

  const list = doc.paths['/api/plugins/inventory/items'].get
  for (const name of ['limit', 'offset']) {
    const parameter = list.parameters.find((p: any) => p.name === name && p.in === 'query')
    t.ok(parameter, `${name} is documented`)
    t.notOk(parameter?.required, `${name} has a default, so a caller may leave it out (the server answers 200 without it)`)
  }
  const withoutPaging = await th.app.inject({ url: '/api/plugins/inventory/items', headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}`, 'x-tenant': tenant.code } })
  t.equal(withoutPaging.statusCode, 200, 'and indeed it does')

  const ids = Object.values<Record<string, any>>(doc.paths).flatMap((item) => Object.values(item).map((op: any) => op.operationId))
  t.notOk(ids.includes(undefined), 'every operation has an operationId')
  t.equal(new Set(ids).size, ids.length, 'no two operations share one')
  const idOf = (path: string, method: string) => doc.paths[path][method].operationId
  t.same(
    [
      idOf('/api/plugins/inventory/items', 'get'),
      idOf('/api/plugins/inventory/items', 'post'),
      idOf('/api/plugins/inventory/items/{id}', 'get'),
      idOf('/api/plugins/inventory/items/{id}', 'patch'),
      idOf('/api/plugins/inventory/items/{id}', 'delete'),
      idOf('/api/plugins/tickets/tickets/{id}/comments', 'post'),
      idOf('/api/plugins/tickets/tickets/close-stale', 'post'),
      idOf('/api/admin/tenants', 'get'),
      idOf('/api/admin/tenants/{code}', 'get'),
      idOf('/api/plugins', 'get'),
    ],
    ['inventory.listItems', 'inventory.createItem', 'inventory.getItem', 'inventory.updateItem', 'inventory.deleteItem', 'tickets.createComment', 'tickets.closeStaleTickets', 'admin.listTenants', 'admin.getTenant', 'plinth.listPlugins'],
    '<module>.<verb><Resource>',
  )
  const again = (await th.app.inject({ url: '/docs/json' })).json()
  t.same(Object.values<any>(again.paths).flatMap((item) => Object.values<any>(item).map((op) => op.operationId)), ids, 'the same ids every time the document is asked for')
})

t.test('Swagger UI is served from the package', async (t) => {
  const page = await th.app.inject({ url: '/docs' })
  t.equal(page.statusCode, 200)
  t.match(page.headers['content-type'], /text\/html/)
  const bundle = await th.app.inject({ url: '/docs/static/swagger-ui-bundle.js' })
  t.equal(bundle.statusCode, 200)
})

t.test('each module operation says what it takes: permission, credential, tenant, every status', async (t) => {
  const doc = (await th.app.inject({ url: '/docs/json' })).json()
  const remove = doc.paths['/api/plugins/inventory/items/{id}'].delete
  t.same(remove['x-permissions'], ['inventory.items.delete'])
  t.match(remove.description, 'Requires permission `inventory.items.delete`')
  t.same(remove.security, [{ bearer: [] }])
  t.match(remove.parameters, [{ in: 'path', name: 'id' }, { in: 'header', name: 'x-tenant', required: false }])
  t.same(remove.responses['204'], { description: 'Deleted' }, '204 has no body')
  t.notOk(remove.responses['200'], 'and no 200 it never gives')
  for (const status of ['400', '401', '403', '404', '409', '500', '503']) {
    t.same(remove.responses[status]?.content, { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } }, `${status}: the problem shape`)
  }
  t.match(doc.components.schemas.Problem, { required: ['type', 'title', 'status', 'detail', 'instance', 'error', 'requestId'] })

  const list = doc.paths['/api/plugins/inventory/items'].get
  t.ok(list.responses['200'].content['application/json'].schema, 'the declared 200 keeps its schema')
  t.notOk(list.responses['409'], 'a read cannot conflict')
  const health = doc.paths['/api/plugins/inventory/health'].get
  t.notOk(health.parameters?.some((p: any) => p.name === 'x-tenant'), '/health needs no tenant')
})

t.test('a public route is documented as needing no credential', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'plinth-openapi-'))
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }))
  await fs.mkdir(path.join(dir, 'catalog'))
  await fs.writeFile(path.join(dir, 'catalog/module.config.ts'), `export default { id: 'catalog', name: 'Catalog', version: '1.0.0', api: '1.x', permissions: [] }\n`)
  await fs.writeFile(
    path.join(dir, 'catalog/plugin.ts'),
    `export const permissions = []\nexport default { meta: { id: 'catalog', name: 'Catalog', version: '1.0.0', api: '1.x' }, register(ctx) { ctx.router.get('/entries', { public: true }, (req, res) => res.json([])) } }\n`,
  )
  const host = await startTestHost({ env: { PLINTH_MODULE_DIRS: dir, PLINTH_MODULES: 'catalog' } })
  t.teardown(host.close)
  const doc = (await host.app.inject({ url: '/docs/json' })).json()
  const entries = doc.paths['/api/plugins/catalog/entries'].get
  t.same(entries.security, [{}, { bearer: [] }])
  t.match(entries.description, 'Public')
  t.notOk(entries.responses['401'], 'no 401 where no credential is needed')
  t.same(entries['x-permissions'], [])
  await t.resolves(SwaggerParser.validate(structuredClone(doc)))
})
