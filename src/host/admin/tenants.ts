// /api/admin/tenants: the same operations as `plinth tenant ...`, over HTTP.
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { FastifyInstance } from 'fastify'
import { Type } from 'typebox'
import type { Host } from '../host.ts'
import { TenantCode } from './params.ts'

export const TenantView = Type.Object({
  id: Type.String({ format: 'uuid' }),
  code: Type.String(),
  name: Type.String(),
  domain: Type.Union([Type.String(), Type.Null()]),
  schema: Type.String(),
  status: Type.Union([Type.Literal('active'), Type.Literal('suspended')]),
  createdAt: Type.String({ format: 'date-time' }),
})

const CodeParams = Type.Object({ code: TenantCode })

export async function adminTenantRoutes(fastify: FastifyInstance, { host }: { host: Host }) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  const tags = ['admin']

  app.get('/', { schema: { tags, response: { 200: Type.Object({ tenants: Type.Array(TenantView) }) } } }, async () => ({
    tenants: await host.tenants.list(),
  }))

  app.post(
    '/',
    {
      schema: {
        tags,
        body: Type.Object(
          {
            code: TenantCode,
            name: Type.String({ minLength: 1, maxLength: 200 }),
            domain: Type.Optional(Type.Union([Type.String({ maxLength: 253 }), Type.Null()])),
          },
          { additionalProperties: false },
        ),
        response: { 201: TenantView },
      },
    },
    async (request, reply) => reply.code(201).send(await host.tenants.create(request.body)),
  )

  app.get('/:code', { schema: { tags, params: CodeParams, response: { 200: TenantView } } }, async (request) =>
    host.tenants.get(request.params.code),
  )

  app.post('/:code/suspend', { schema: { tags, params: CodeParams, response: { 200: TenantView } } }, async (request) =>
    host.tenants.suspend(request.params.code),
  )

  app.post('/:code/resume', { schema: { tags, params: CodeParams, response: { 200: TenantView } } }, async (request) =>
    host.tenants.resume(request.params.code),
  )

  app.delete(
    '/:code',
    {
      schema: {
        tags,
        description: 'Drops the tenant and all its data. `confirm` must repeat the tenant code.',
        params: CodeParams,
        querystring: Type.Object({ confirm: Type.Optional(Type.String()) }),
        response: { 200: TenantView },
      },
    },
    async (request) => host.tenants.drop(request.params.code, request.query.confirm),
  )
}
