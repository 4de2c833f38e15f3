// The platform admin API under /api/admin, for operators and automation: Bearer PLINTH_ADMIN_TOKEN.
// With no token configured the whole API refuses every call.
import type { FastifyInstance } from 'fastify'
import { problems } from '../../problems.ts'
import type { Host } from '../host.ts'
import { isAdminToken } from '../../rbac/admin-token.ts'
import { adminAccessRoutes } from './access.ts'
import { adminTenantPluginRoutes } from './tenant-plugins.ts'
import { adminTenantRoutes } from './tenants.ts'

export async function adminRoutes(app: FastifyInstance, { host }: { host: Host }) {
  app.addHook('onRequest', async (request) => {
    if (isAdminToken(request.headers.authorization, host.config.adminToken)) return
    host.authFailures.check(request)
    host.authFailures.failed(request, { reason: host.config.adminToken ? 'bad admin token' : 'PLINTH_ADMIN_TOKEN is not set' }, 'admin authentication failed')
    throw problems.unauthorized()
  })
  await app.register(adminTenantRoutes, { prefix: '/tenants', host })
  await app.register(adminTenantPluginRoutes, { prefix: '/tenants', host })
  await app.register(adminAccessRoutes, { prefix: '/tenants', host })
}
