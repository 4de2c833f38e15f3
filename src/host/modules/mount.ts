// Mounts each module under /api/plugins/<id> in its own encapsulated Fastify context:
//   /health         open (no tenant, no credential): 200 { ok: true } when loaded, else 503
//   everything else a tenant scope: authenticate, settle the tenant, check the module is enabled
//                   and ready for that tenant (all before the body is parsed), validate, run the
//                   route's guards, then the handler in the request's tenant transaction.
// A module that failed or was refused answers 503 MODULE_UNAVAILABLE on every other path.
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { installTenantScope } from '../../tenancy/tenant-scope.ts'
import type { IdentityProvider } from '../../rbac/principal.ts'
import { requirePermission } from '../../rbac/require.ts'
import { HttpProblem } from '../errors.ts'
import type { Host } from '../host.ts'
import type { ModuleContext } from './contract.ts'
import { registerModule, within, type ModuleRecord } from './loader.ts'
import { currentRequest, mountRoutes } from './router.ts'

const HEALTH_TIMEOUT_MS = 2000

function moduleContext(host: Host, record: ModuleRecord, router: ModuleContext['router'], declare: (p: string) => void): ModuleContext {
  const moduleLog = host.log.child({ module: record.id })
  return {
    router,
    rbac: {
      require(permission: string) {
        declare(permission)
        return requirePermission(permission)
      },
    },
    withTenantTx: (tenantId, work) => host.withTenantTx(tenantId, work),
    log(msg, meta) {
      const request = currentRequest.getStore()
      if (request) request.log.info({ module: record.id, ...meta }, msg)
      else moduleLog.info(meta ?? {}, msg)
    },
  }
}

/** Runs every loaded module's register(ctx); afterwards each record says loaded, failed or refused. */
export async function registerModules(host: Host) {
  for (const record of host.modules) {
    await registerModule(record, (r, router, declare) => moduleContext(host, r, router, declare), host.config.pluginRegisterTimeoutMs)
    if (record.status === 'loaded') host.log.info({ module: record.id, version: record.version, routes: record.routes.length }, 'module loaded')
    else host.log.error({ module: record.id, status: record.status, reason: record.reason }, `module ${record.status}`)
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
      moduleScope.get('/health', async (_request, reply) => {
        const ok = await healthy(host, record)
        return reply.code(ok ? 200 : 503).send({ ok })
      })
      if (record.status !== 'loaded') {
        moduleScope.all('/*', async () => {
          throw new HttpProblem(503, 'MODULE_UNAVAILABLE', `Module ${record.id} is not available.`)
        })
        return
      }
      await moduleScope.register(async (scope) => {
        installTenantScope(scope, { pool: host.pool, registry: host.registry, identities })
        scope.addHook('onRequest', function checkModuleForTenant(request: FastifyRequest, _reply, done) {
          const state = host.plugins.state(request.tenant!.id, record.id)
          if (!state?.enabled) return done(new HttpProblem(404, 'MODULE_NOT_ENABLED', `Module ${record.id} is not enabled for this tenant.`))
          if (state.status !== 'ready') {
            return done(new HttpProblem(503, 'MODULE_UNAVAILABLE', `Module ${record.id} is not available for this tenant; an operator has been told why.`))
          }
          done()
        })
        mountRoutes(scope, record.id, record.routes)
      })
    },
    { prefix: `/api/plugins/${record.id}` },
  )
}
