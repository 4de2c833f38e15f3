// /api/admin/tenants/:code/keys and /roles: the same as `plinth key ...` and `plinth role ...`.
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { FastifyInstance } from 'fastify'
import { Type } from 'typebox'
import type { Host } from '../../app/host.ts'
import { ROLE_NAME } from '../../access/roles.ts'
import { TenantCode } from './params.ts'

const RoleName = Type.String({ pattern: ROLE_NAME.source })
/** What a change that answers nothing documents: 204 and no body. */
const done = { 204: Type.Null({ description: 'Done' }) }

export async function adminAccessRoutes(fastify: FastifyInstance, { host }: { host: Host }) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  const tags = ['admin']
  const tenant = (code: string) => host.tenants.get(code)

  app.get('/:code/keys', { schema: { tags, params: Type.Object({ code: TenantCode }) } }, async (request) => ({
    keys: await host.keys.list((await tenant(request.params.code)).id),
  }))

  app.post(
    '/:code/keys',
    {
      schema: {
        tags,
        description: 'Issues an API key. The response is the only time its secret (`key`) is shown.',
        params: Type.Object({ code: TenantCode }),
        body: Type.Object({ name: Type.String({ minLength: 1, maxLength: 100 }), roles: Type.Optional(Type.Array(RoleName)) }, { additionalProperties: false }),
        response: { 201: Type.Unknown({ description: 'The key, its secret (`key`) shown this once' }) },
      },
    },
    async (request, reply) => reply.code(201).send(await host.createKey(request.params.code, request.body.name, request.body.roles)),
  )

  app.delete('/:code/keys/:id', { schema: { tags, params: Type.Object({ code: TenantCode, id: Type.String() }) } }, async (request) =>
    host.keys.revoke(await tenant(request.params.code), request.params.id),
  )

  app.get('/:code/roles', { schema: { tags, params: Type.Object({ code: TenantCode }) } }, async (request) => ({
    roles: await host.roles.list(await tenant(request.params.code)),
  }))

  app.post(
    '/:code/roles',
    {
      schema: {
        tags,
        params: Type.Object({ code: TenantCode }),
        body: Type.Object({ name: RoleName, description: Type.Optional(Type.String({ maxLength: 500 })) }, { additionalProperties: false }),
        response: { 201: Type.Object({ name: RoleName }, { description: 'Created' }) },
      },
    },
    async (request, reply) => {
      await host.roles.create(await tenant(request.params.code), request.body.name, request.body.description)
      return reply.code(201).send({ name: request.body.name })
    },
  )

  app.delete('/:code/roles/:role', { schema: { tags, params: Type.Object({ code: TenantCode, role: RoleName }), response: done } }, async (request, reply) => {
    await host.roles.remove(await tenant(request.params.code), request.params.role)
    return reply.code(204).send(null)
  })

  const Grant = Type.Object({ code: TenantCode, role: RoleName, permission: Type.String() })
  app.put('/:code/roles/:role/grants/:permission', { schema: { tags, params: Grant, response: done } }, async (request, reply) => {
    await host.roles.grant(await tenant(request.params.code), request.params.role, request.params.permission)
    return reply.code(204).send(null)
  })
  app.delete('/:code/roles/:role/grants/:permission', { schema: { tags, params: Grant, response: done } }, async (request, reply) => {
    await host.roles.revoke(await tenant(request.params.code), request.params.role, request.params.permission)
    return reply.code(204).send(null)
  })

  const Holder = Type.Object({ code: TenantCode, role: RoleName, principal: Type.String() })
  app.put('/:code/roles/:role/principals/:principal', { schema: { tags, params: Holder, response: done } }, async (request, reply) => {
    await host.roles.assign(await tenant(request.params.code), request.params.role, request.params.principal)
    return reply.code(204).send(null)
  })
  app.delete('/:code/roles/:role/principals/:principal', { schema: { tags, params: Holder, response: done } }, async (request, reply) => {
    await host.roles.unassign(await tenant(request.params.code), request.params.role, request.params.principal)
    return reply.code(204).send(null)
  })
}
