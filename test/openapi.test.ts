// The OpenAPI 3.1 document: valid, built from every loaded module's route schemas, grouped by
// module, with Swagger UI served from the npm package.
import SwaggerParser from '@apidevtools/swagger-parser'
import t from 'tap'
import { startTestHost } from '../src/testing/host.ts'

const th = await startTestHost()
t.teardown(th.close)

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
    for (const route of module.routes) {
      const path = `/api/plugins/${module.id}${route.path.replace(/:([a-zA-Z]+)/g, '{$1}')}`
      const operation = doc.paths[path]?.[route.method.toLowerCase()]
      t.ok(operation, `${route.method} ${path}`)
      t.same(operation?.tags, [module.id])
    }
  }
  const create = doc.paths['/api/plugins/inventory/items'].post
  t.match(create.requestBody.content['application/json'].schema, { type: 'object', required: ['name'] }, 'the body schema is documented')
})

t.test('Swagger UI is served from the package', async (t) => {
  const page = await th.app.inject({ url: '/docs' })
  t.equal(page.statusCode, 200)
  t.match(page.headers['content-type'], /text\/html/)
  const bundle = await th.app.inject({ url: '/docs/static/swagger-ui-bundle.js' })
  t.equal(bundle.statusCode, 200)
})
