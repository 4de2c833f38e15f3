// GET /api/plugins: every module plinth found, with its status. Why one failed or was refused is
// an operator's business: the reason is shown to the platform admin only.
import type { FastifyInstance } from 'fastify'
import { isAdminToken } from '../access/admin-token.ts'
import type { Host } from '../app/host.ts'
import { describeModule } from '../modules/discovery.ts'

export async function moduleListRoutes(app: FastifyInstance, { host }: { host: Host }) {
  // Open (the document says so: `public`): anyone may see which modules exist; reasons are the admin's.
  app.get('/api/plugins', { config: { public: true } }, async (request) => {
    const admin = isAdminToken(request.headers.authorization, host.config.adminToken)
    return {
      plugins: host.modules.map((m) => describeModule(m, admin)),
    }
  })
}
