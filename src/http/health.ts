// Probes for orchestrators (live while the process runs, ready while the database answers, the
// host's migrations are applied and the change feed is within its bound), the index at /, and
// /metrics behind its token.
import type { FastifyInstance } from 'fastify'
import { HttpProblem, sendProblem } from '../problems.ts'
import { isAdminToken } from '../access/admin-token.ts'
import type { Host } from '../app/host.ts'
import type { Metrics } from '../app/metrics.ts'
import type { FailureBrake } from '../access/failure-brake.ts'
import { requireOperatorToken } from './operator-token.ts'
import { PLINTH_VERSION } from '../app/version.ts'
import { within } from '../platform/within.ts'

const READY_TIMEOUT_MS = 2000

export async function healthRoutes(app: FastifyInstance, { host }: { host: Host }) {
  // Probes log at debug while they pass (request-context.ts): one a second is not the operator's news.
  const probe = { config: { probe: true, public: true } }
  app.get('/health/live', probe, async () => ({ ok: true }))

  // What this is, and where to go from here.
  app.get('/', { config: { public: true } }, async () => ({
    name: 'plinth',
    version: PLINTH_VERSION,
    links: { docs: '/docs', openapi: '/docs/json', plugins: '/api/plugins', ready: '/health/ready', live: '/health/live' },
  }))

  app.get('/health/ready', probe, async (request, reply) => {
    const failedHost = host.lastMigration?.tenants.filter((t) => t.source === 'host' && t.status !== 'ok') ?? []
    try {
      await within(READY_TIMEOUT_MS, 'SELECT 1', () => host.pool.query('SELECT 1'))
    } catch {
      return sendProblem(request, reply, new HttpProblem(503, 'NOT_READY', 'The database does not answer.', { headers: { 'retry-after': '1' } }))
    }
    if (!host.lastMigration) {
      return sendProblem(request, reply, new HttpProblem(503, 'NOT_READY', 'Migrations have not been applied yet.'))
    }
    const changes = host.changes.status()
    if (changes.behind) {
      const why = changes.error ? `it cannot read changes (${changes.error})` : 'its last read is late'
      return sendProblem(
        request,
        reply,
        new HttpProblem(503, 'NOT_READY', `The change feed is ${changes.lagMs} ms behind: ${why}.`, { headers: { 'retry-after': '1' } }),
      )
    }
    // Anyone may ask whether the instance is ready; what it runs on and how many tenants it
    // serves are for the operator's token (the metrics token, or the admin token).
    const operator = isAdminToken(request.headers.authorization, host.config.metricsToken) || isAdminToken(request.headers.authorization, host.config.adminToken)
    if (!operator) return { ok: true }
    return {
      ok: true,
      database: host.db.kind,
      tenants: host.registry.size,
      tenantMigrationFailures: failedHost.length,
      changeFeed: { mode: changes.mode, lagMs: changes.lagMs },
    }
  })
}

/**
 * GET /metrics on the main port, behind `Authorization: Bearer` PLINTH_METRICS_TOKEN (or the admin
 * token): series names and labels say what modules and tenants there are. METRICS_PORT serves them
 * on a port of their own instead, with no token (server.ts).
 */
export async function metricsRoute(app: FastifyInstance, { host, metrics, authFailures }: { host: Host; metrics: Metrics; authFailures: FailureBrake }) {
  const token = host.config.metricsToken ?? host.config.adminToken
  app.get('/metrics', { schema: { hide: true } }, async (request, reply) => {
    requireOperatorToken(request, authFailures, token, { name: 'metrics', unset: 'no PLINTH_METRICS_TOKEN or PLINTH_ADMIN_TOKEN set' })
    return reply.type(metrics.contentType).send(await metrics.text())
  })
}
