// Mounts each module under /api/plugins/<id> in its own encapsulated Fastify context:
//   /health         open (no tenant, no credential): the module's own GET /health when it declares
//                   one, else 200 { ok: true } while loaded (and health(ctx) agrees), 503 otherwise
//   everything else a tenant scope: authenticate, settle the tenant, check the module is enabled
//                   and ready for that tenant (all before the body is parsed), validate, then the
//                   route's chain (guards, then the handler in the request's tenant transaction).
// A module that failed or was refused answers 503 MODULE_UNAVAILABLE on every other path. Before
// a module is mounted, its routes are mounted once on a scratch Fastify instance: whatever Fastify
// refuses there (a clash, a schema that does not compile) fails that module alone.
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify'
import { installTenantScope } from './tenant-request.ts'
import type { IdentityProvider } from '../access/principal.ts'
import { requiredPermission } from '../access/require.ts'
import { HttpProblem, problems } from '../problems.ts'
import { ROUTING_OPTIONS } from './fastify-options.ts'
import type { Host } from '../app/host.ts'
import { chainHandler } from '../modules/express/chain.ts'
import { decorateExpressRequest } from '../modules/express/request.ts'
import type { CompiledRoute } from '../modules/express/router.ts'
import type { ModuleRecord } from '../modules/discovery.ts'
import { registerModule } from '../modules/loader.ts'
import { moduleContexts } from '../modules/context.ts'
import { within } from '../platform/within.ts'

const HEALTH_TIMEOUT_MS = 2000

export const modulePrefix = (id: string) => `/api/plugins/${id}`

/** Runs every loaded module's register(ctx); afterwards each record says loaded, failed or refused. */
export async function registerModules(host: Host) {
  const contexts = moduleContexts(host)
  for (const record of host.modules) {
    await registerModule(record, contexts, host.config.moduleRegisterTimeoutMs)
    if (record.status === 'loaded') await checkMountable(record)
    if (record.status === 'loaded') host.log.info({ module: record.id, version: record.version, routes: record.routes.length }, 'module loaded')
    else {
      // None of its code runs: neither its routes nor its jobs.
      host.jobDefinitions.forget(record.id)
      host.log.error({ module: record.id, status: record.status, reason: record.reason }, `module ${record.status}`)
    }
  }
}

/** Mounts the module's routes on a scratch instance: what Fastify would refuse fails the module here. */
async function checkMountable(record: ModuleRecord) {
  const scratch = Fastify({ ...ROUTING_OPTIONS, logger: false })
  scratch.register(
    async (scope) => {
      decorateExpressRequest(scope, modulePrefix(record.id))
      mountRoutes(scope, record, record.routes)
    },
    { prefix: modulePrefix(record.id) },
  )
  try {
    await scratch.ready()
  } catch (err) {
    record.status = 'failed'
    record.reason = `mount: ${(err as Error).message}`
  } finally {
    await scratch.close()
  }
}

const isOwnHealth = (route: CompiledRoute) => route.url === '/health' && (route.method === 'GET' || route.method === 'HEAD')

/** The permissions a route's guards check (ctx.rbac.require), for its OpenAPI operation. */
const routePermissions = (route: CompiledRoute) => [...new Set(route.steps.map((step) => requiredPermission(step.fn)).filter((p) => p !== undefined))]

function mountRoutes(scope: FastifyInstance, record: ModuleRecord, routes: CompiledRoute[]) {
  for (const route of routes) {
    const { schema = {}, summary, description, tags } = route.options
    scope.route({
      method: route.method,
      url: route.url,
      schema: { ...schema, summary, description, tags: tags ?? [record.id], ...(route.automatic ? { hide: true } : {}) },
      config: { module: record.id, public: route.options.public === true, permissions: routePermissions(route) },
      exposeHeadRoute: route.exposeHeadRoute,
      handler: chainHandler(route),
    })
  }
}

async function healthy(host: Host, record: ModuleRecord): Promise<boolean> {
  if (record.status !== 'loaded') return false
  const check = record.definition?.health
  if (!check) return true
  try {
    return (await within(HEALTH_TIMEOUT_MS, 'health(ctx)', () => check(record.ctx!))) === true
  } catch (err) {
    host.log.warn({ module: record.id, err: { message: (err as Error).message } }, 'module health check failed')
    return false
  }
}

export function mountModule(app: FastifyInstance, host: Host, record: ModuleRecord, identities: IdentityProvider | undefined) {
  return app.register(
    async (moduleScope) => {
      const loaded = record.status === 'loaded'
      const ownHealth = loaded ? record.routes.filter(isOwnHealth) : []
      if (ownHealth.length === 0) {
        moduleScope.get('/health', async (_request, reply) => {
          const ok = await healthy(host, record)
          return reply.code(ok ? 200 : 503).send({ ok })
        })
      }
      if (!loaded) {
        moduleScope.all('/*', async () => {
          throw new HttpProblem(503, 'MODULE_UNAVAILABLE', `Module ${record.id} is not available.`)
        })
        return
      }
      decorateExpressRequest(moduleScope, modulePrefix(record.id))
      // The module's own /health: open, as the contract says, so it has no tenant and no transaction.
      mountRoutes(moduleScope, record, ownHealth)
      await moduleScope.register(async (scope) => {
        installTenantScope(scope, { tenantPool: host.tenantPool, registry: host.registry, identities, freshness: host.changes, openTransaction: 'on-demand' })
        scope.addHook('onRequest', function checkModuleForTenant(request: FastifyRequest, _reply, done) {
          // Deny by default: a route that does not say it is public needs a credential of the tenant.
          if (!request.principal && request.routeOptions.config.public !== true) return done(problems.unauthorized())
          const state = host.tenantModules.state(request.tenant!.id, record.id)
          if (!state?.enabled) return done(new HttpProblem(404, 'MODULE_NOT_ENABLED', `Module ${record.id} is not enabled for this tenant.`))
          if (state.status !== 'ready') {
            return done(new HttpProblem(503, 'MODULE_UNAVAILABLE', `Module ${record.id} is not available for this tenant; an operator has been told why.`))
          }
          done()
        })
        mountRoutes(
          scope,
          record,
          record.routes.filter((route) => !isOwnHealth(route)),
        )
      })
    },
    { prefix: modulePrefix(record.id) },
  )
}
