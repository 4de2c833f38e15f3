// /api/me and /api/nav: who the caller is, and what a front end should show them. Both need a
// credential and settle its tenant like any tenant route; neither takes a database connection
// once caches are warm.
import type { FastifyInstance } from 'fastify'
import { identifyAndResolve } from './tenant-request.ts'
import type { IdentityProvider } from '../access/principal.ts'
import { problems } from '../problems.ts'
import type { Host } from '../app/host.ts'

export async function selfRoutes(app: FastifyInstance, { host, identities }: { host: Host; identities: IdentityProvider }) {
  app.addHook('onRequest', async (request) => {
    await identifyAndResolve(request, { registry: host.registry, identities, freshness: host.changes })
    if (!request.principal) throw problems.unauthorized()
  })

  app.get('/api/me', async (request) => {
    const { id, kind, permissions } = request.principal!
    const { id: tenantId, code, name } = request.tenant!
    return { principal: { id, kind }, tenant: { id: tenantId, code, name }, permissions: [...permissions].sort() }
  })

  // The nav items of the modules enabled for the caller's tenant, each shown only if the caller
  // holds every permission it lists.
  app.get('/api/nav', async (request) => {
    const permissions = request.principal!.permissions
    const enabled = new Set(host.tenantModules.enabledFor(request.tenant!.id))
    const modules = host.modules
      .filter((m) => m.status === 'loaded' && enabled.has(m.id) && m.manifest?.nav)
      .map((m) => ({
        id: m.id,
        name: m.name,
        basePath: m.manifest!.nav!.basePath,
        items: m.manifest!.nav!.items
          .filter((item) => (item.permissions ?? []).every((p) => permissions.has(p)))
          .map(({ path, label }) => ({ path, label })),
      }))
      .filter((m) => m.items.length > 0)
    return { modules }
  })
}
