// /api/admin/tenants/:code/modules: which modules a tenant has; enable or disable one. The same
// routes under .../plugins/... are the deprecated names: marked so in the OpenAPI document and by
// a Deprecation header (RFC 9745), with the list under its old key.
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { FastifyInstance, FastifyReply } from 'fastify'
import { Type } from 'typebox'
import type { Host } from '../../app/host.ts'
import { ModuleId, TenantCode } from './params.ts'

const Params = Type.Object({ code: TenantCode, id: ModuleId })

export async function adminTenantModuleRoutes(fastify: FastifyInstance, { host }: { host: Host }) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  const tags = ['admin']

  for (const word of ['modules', 'plugins'] as const) {
    const deprecated = word === 'plugins'
    const flag = (reply: FastifyReply) => {
      if (deprecated) reply.header('deprecation', 'true')
    }
    app.get(`/:code/${word}`, { schema: { tags, deprecated, params: Type.Object({ code: TenantCode }) } }, async (request, reply) => {
      flag(reply)
      const tenant = await host.tenants.get(request.params.code)
      await host.tenantModules.refresh(tenant.id)
      const modules = host.modules.map((m) => ({ id: m.id, module: m.status, ...(host.tenantModules.state(tenant.id, m.id) ?? { enabled: false, status: null, error: null }) }))
      return { [word]: modules }
    })

    app.post(`/:code/${word}/:id/enable`, { schema: { tags, deprecated, params: Params } }, async (request, reply) => {
      flag(reply)
      const result = await host.enableModule(request.params.code, request.params.id)
      // The report says whether its migrations applied; a failure there is the module's, not the request's.
      return reply.send(result)
    })

    app.post(`/:code/${word}/:id/disable`, { schema: { tags, deprecated, params: Params } }, async (request, reply) => {
      flag(reply)
      await host.disableModule(request.params.code, request.params.id)
      return { tenant: request.params.code, module: request.params.id, enabled: false }
    })
  }
}
