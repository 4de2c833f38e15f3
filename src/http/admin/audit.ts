// /api/admin/audit: the audit trail, newest first, filtered and paged by cursor; and its check.
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { FastifyInstance } from 'fastify'
import { Type } from 'typebox'
import type { Host } from '../../app/host.ts'
import { listAudit } from '../../platform/audit/trail.ts'
import { verifyAudit } from '../../platform/audit/verify.ts'
import { TenantCode } from './params.ts'

const Nullable = (schema: ReturnType<typeof Type.String>) => Type.Union([schema, Type.Null()])

export const AuditEventView = Type.Object({
  seq: Type.Integer(),
  at: Type.String({ format: 'date-time' }),
  actorKind: Type.String(),
  actorId: Nullable(Type.String()),
  action: Type.String(),
  target: Nullable(Type.String()),
  tenant: Nullable(Type.String()),
  module: Nullable(Type.String()),
  outcome: Type.Union([Type.Literal('success'), Type.Literal('failure')]),
  requestId: Nullable(Type.String()),
  clientAddress: Nullable(Type.String()),
  changes: Type.Object({}, { additionalProperties: true }),
  prevHash: Type.String(),
  hash: Type.String(),
})

const Query = Type.Object(
  {
    actor: Type.Optional(Type.String({ pattern: '^[a-z-]+(:.+)?$', description: '<kind> or <kind>:<id>: admin-token, console, api-key, jwt, cli, system, anonymous' })),
    action: Type.Optional(Type.String({ pattern: '^[a-z-]+(\\.[a-z-]+)?$', description: 'an action (tenant.created) or every action of an object (tenant)' })),
    tenant: Type.Optional(TenantCode),
    since: Type.Optional(Type.String({ format: 'date-time' })),
    until: Type.Optional(Type.String({ format: 'date-time' })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 50 })),
    cursor: Type.Optional(Type.String({ pattern: '^[1-9][0-9]{0,17}$' })),
  },
  { additionalProperties: false },
)

export async function adminAuditRoutes(fastify: FastifyInstance, { host }: { host: Host }) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  const tags = ['admin']

  app.get(
    '/',
    { schema: { tags, description: 'The audit trail, newest first; `next` is the cursor of the next (older) page.', querystring: Query, response: { 200: Type.Object({ events: Type.Array(AuditEventView), next: Type.Union([Type.String(), Type.Null()]) }) } } },
    async (request) => {
      const { limit, cursor, since, until, ...filter } = request.query
      return listAudit(host.pool, { ...filter, since: since ? new Date(since) : undefined, until: until ? new Date(until) : undefined }, { limit, cursor })
    },
  )

  app.get(
    '/verify',
    {
      schema: {
        tags,
        description: 'Recomputes the chain and names the first broken link (as `plinth audit verify`).',
        response: {
          200: Type.Object({
            ok: Type.Boolean(),
            checked: Type.Integer(),
            head: Type.Object({ seq: Type.Integer(), hash: Type.String() }),
            broken: Type.Optional(Type.Object({ seq: Type.Integer(), problem: Type.String() })),
          }),
        },
      },
    },
    async () => verifyAudit(host.pool),
  )
}
