// The platform admin API under /api/admin, for operators and automation: Bearer PLINTH_ADMIN_TOKEN.
// With no token configured the whole API refuses every call.
import type { FastifyInstance } from 'fastify'
import { hash, timingSafeEqual } from 'node:crypto'
import { problems } from '../errors.ts'
import type { Host } from '../host.ts'
import { adminAccessRoutes } from './access.ts'
import { adminTenantPluginRoutes } from './tenant-plugins.ts'
import { adminTenantRoutes } from './tenants.ts'

const digest = (value: string) => hash('sha256', value, 'buffer')

export function isAdminToken(authorization: string | undefined, adminToken: string | undefined): boolean {
  if (!adminToken || !authorization?.startsWith('Bearer ')) return false
  // Comparing digests keeps the comparison constant-time whatever the lengths.
  return timingSafeEqual(digest(authorization.slice(7)), digest(adminToken))
}

export async function adminRoutes(app: FastifyInstance, { host }: { host: Host }) {
  app.addHook('onRequest', async (request) => {
    if (!isAdminToken(request.headers.authorization, host.config.adminToken)) {
      request.log.warn({ reason: host.config.adminToken ? 'bad admin token' : 'PLINTH_ADMIN_TOKEN is not set' }, 'admin authentication failed')
      throw problems.unauthorized()
    }
  })
  await app.register(adminTenantRoutes, { prefix: '/tenants', host })
  await app.register(adminTenantPluginRoutes, { prefix: '/tenants', host })
  await app.register(adminAccessRoutes, { prefix: '/tenants', host })
}
