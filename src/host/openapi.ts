// The OpenAPI 3.1 document of every route's schema, grouped by module (tag = module id), at
// /docs/json, and Swagger UI at /docs. The UI's assets come from the npm package: nothing is
// fetched at run time.
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { ModuleRecord } from './modules/loader.ts'

async function openApiPlugin(app: FastifyInstance, { modules }: { modules: ModuleRecord[] }) {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'plinth',
        version: '1.0.0',
        description:
          'Module routes live under /api/plugins/<id>; name the tenant with the x-tenant header (or call its domain) and authenticate with Authorization: Bearer <API key or JWT>. Errors are application/problem+json.',
      },
      tags: [
        ...modules.filter((m) => m.status === 'loaded').map((m) => ({ name: m.id, description: `${m.name} ${m.version}` })),
        { name: 'admin', description: 'Platform administration (Bearer PLINTH_ADMIN_TOKEN)' },
      ],
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  })
  await app.register(swaggerUi, { routePrefix: '/docs' })
}

export const openApi = fp(openApiPlugin, { name: 'plinth-openapi' })
