// /api/admin/tenants/:code/plugins: which modules a tenant has; enable or disable one.
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { FastifyInstance } from 'fastify'
import { Type } from 'typebox'
import type { Host } from '../host.ts'
import { ModuleId, TenantCode } from './params.ts'

const Params = Type.Object({ code: TenantCode, id: ModuleId })

export async function adminTenantPluginRoutes(fastify: FastifyInstance, { host }: { host: Host }) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  const tags = ['admin']

  app.get('/:code/plugins', { schema: { tags, params: Type.Object({ code: TenantCode }) } }, async (request) => {
    const tenant = await host.tenants.get(request.params.code)
    await host.plugins.refresh(tenant.id)
    return {
      plugins: host.modules.map((m) => ({ id: m.id, module: m.status, ...(host.plugins.state(tenant.id, m.id) ?? { enabled: false, status: null, error: null }) })),
    }
  })

  app.post('/:code/plugins/:id/enable', { schema: { tags, params: Params } }, async (request, reply) => {
    const result = await host.enableModule(request.params.code, request.params.id)
    // The report says whether its migrations applied; a failure there is the module's, not the request's.
    return reply.send(result)
  })

  app.post('/:code/plugins/:id/disable', { schema: { tags, params: Params } }, async (request) => {
    await host.disableModule(request.params.code, request.params.id)
    return { tenant: request.params.code, module: request.params.id, enabled: false }
  })
}
