// Builds the Fastify app on an open Host: the one error shape, request ids and log lines, CORS,
// health probes, the admin API, and (through `routes`) tenant-scoped routes.
import cors from '@fastify/cors'
import sensible from '@fastify/sensible'
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import { installTenantScope } from './tenant-request.ts'
import { requestDb } from '../tenancy/transaction.ts'
import type { IdentityProvider } from '../access/principal.ts'
import { consoleRoutes } from './console/index.ts'
import { tracing } from '../platform/tracing.ts'
import { adminRoutes } from './admin/index.ts'
import { errorHandler, PROTOCOL_ERROR_OPTIONS } from './error-handler.ts'
import { ROUTING_OPTIONS } from './fastify-options.ts'
import { healthRoutes, metricsRoute } from './health.ts'
import { jsonBody } from './json-body.ts'
import { openApi } from './openapi.ts'
import { selfRoutes } from './self.ts'
import { moduleListRoutes } from './module-list.ts'
import { mountModule, registerModules } from './mount-modules.ts'
import type { Host } from '../app/host.ts'
import { requestContext, requestIdFor } from './request-context.ts'

declare module 'fastify' {
  interface FastifyInstance {
    plinth: Host
  }
}

export interface AppOptions {
  /** Registers routes in a tenant scope (used by tests until modules are loaded). */
  tenantRoutes?: (scope: FastifyInstance) => Promise<void> | void
  /** Close the Host (pool, embedded database) when the app closes. Default true. */
  closeHost?: boolean
  /** Who is calling, for tenant routes. Default: the host's own (API keys, JWTs, the admin token). */
  identities?: IdentityProvider
}

export class StrictModulesError extends Error {}

export async function buildApp(host: Host, options: AppOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: host.log as FastifyBaseLogger,
    genReqId: requestIdFor,
    requestIdHeader: false,
    // One line per request, written by request-context.ts when it ends.
    logController: new LogController({ requestIdLogLabel: 'reqId', disableRequestLogging: true }),
    bodyLimit: host.config.bodyLimitBytes,
    // Draining answers 503 in the one error shape (request-context.ts), not Fastify's own body.
    return503OnClosing: false,
    ...ROUTING_OPTIONS,
    ...PROTOCOL_ERROR_OPTIONS,
  })
  // A Host the CLI opened has no identities, brake or metrics: it serves no request.
  if (!host.requests) throw new Error('buildApp needs a Host opened with its request services (not requests: false)')
  const { metrics, authFailures } = host.requests
  app.decorate('plinth', host)
  app.decorateRequest('tenant', null)
  app.decorateRequest('transaction', null)
  app.decorateRequest('principal', null)
  app.decorateRequest('db', { getter: requestDb })

  await app.register(errorHandler)
  await app.register(jsonBody)
  await app.register(requestContext, { metrics })
  // Tracing on (PLINTH_OTEL=1): a span per request; off, nothing of it is loaded.
  if (tracing) await app.register((await import('./tracing.ts')).requestTracing)
  await app.register(sensible)
  // No origins configured: no CORS headers for anyone, so no CORS hook on every request either.
  const { corsOrigins } = host.config
  if (corsOrigins === true || corsOrigins.length > 0) {
    await app.register(cors, { origin: corsOrigins, credentials: true, exposedHeaders: ['x-request-id', 'retry-after'] })
  }

  const identities = options.identities ?? host.requests.identities
  await registerModules(host)
  const unavailable = host.modules.filter((m) => m.status !== 'loaded')
  const failedMigrations = host.lastMigration?.tenants.filter((r) => r.source !== 'host' && r.status !== 'ok') ?? []
  if (host.config.strictModules && (unavailable.length > 0 || failedMigrations.length > 0)) {
    const reasons = [
      ...unavailable.map((m) => `${m.id} ${m.status}: ${m.reason}`),
      ...failedMigrations.map((r) => `${r.source} migration ${r.status} for tenant ${r.tenant}: ${r.error}`),
    ]
    throw new StrictModulesError(`PLINTH_STRICT_MODULES=1 and ${reasons.length} module problem(s):\n  ${reasons.join('\n  ')}`)
  }

  // Before any route: the document is built from the routes registered after it.
  await app.register(openApi, { modules: host.modules })
  await app.register(healthRoutes, { host })
  if (metrics && host.config.metricsPort === undefined) await app.register(metricsRoute, { host, metrics, authFailures })
  await app.register(moduleListRoutes, { host })
  await app.register(selfRoutes, { host, identities })
  // A second folder with a module id already found is refused (loader.ts) and not mounted.
  const mounted = new Set<string>()
  for (const record of host.modules) {
    if (mounted.has(record.id)) continue
    mounted.add(record.id)
    await mountModule(app, host, record, identities)
  }
  await app.register(adminRoutes, { prefix: '/api/admin', host, authFailures })
  await app.register(consoleRoutes, { prefix: '/admin', host, authFailures })
  if (options.tenantRoutes) {
    const register = options.tenantRoutes
    await app.register(async (scope) => {
      installTenantScope(scope, { tenantPool: host.tenantPool, registry: host.registry, identities, freshness: host.changes })
      await register(scope)
    })
  }

  if (options.closeHost !== false) app.addHook('onClose', async () => host.close())
  return app
}
