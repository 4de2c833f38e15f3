// /api/admin/tenants: the same operations as `plinth tenant ...`, over HTTP.
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { FastifyInstance } from 'fastify'
import { Type } from 'typebox'
import type { NewTenant } from '../../tenancy/tenants.ts'
import type { Host } from '../../app/host.ts'
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

  app.post(
    '/bulk',
    {
      schema: {
        tags,
        description:
          'Creates every tenant of the list, each all or nothing, several per transaction. One bad entry fails alone: ' +
          'the answer is 200 with what was created and, per failed entry, its index and error in the one error shape.',
        body: Type.Object(
          {
            tenants: Type.Array(Type.Object({}, { additionalProperties: true }), { minItems: 1, maxItems: 10_000 }),
            concurrency: Type.Optional(Type.Integer({ minimum: 1, maximum: 16 })),
            batchSize: Type.Optional(Type.Integer({ minimum: 1, maximum: 500 })),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            created: Type.Array(TenantView),
            failed: Type.Array(
              Type.Object({
                index: Type.Integer(),
                code: Type.Unknown(),
                status: Type.Integer(),
                error: Type.String(),
                detail: Type.String(),
                errors: Type.Optional(Type.Array(Type.Object({ path: Type.String(), message: Type.String() }))),
              }),
            ),
          }),
        },
      },
    },
    async (request) => {
      const { tenants, concurrency, batchSize } = request.body
      return host.tenants.createMany(tenants as unknown as NewTenant[], { concurrency, batchSize })
    },
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
