// Probes for orchestrators: live while the process runs, ready while the database answers, the
// host's migrations are applied and the change feed is within its bound (its caches are fresh).
import type { FastifyInstance } from 'fastify'
import { HttpProblem, sendProblem } from '../problems.ts'
import type { Host } from './host.ts'
import { PLINTH_VERSION } from './version.ts'

const READY_TIMEOUT_MS = 2000

export async function healthRoutes(app: FastifyInstance, { host }: { host: Host }) {
  app.get('/health/live', async () => ({ ok: true }))

  // What this is, and where to go from here.
  app.get('/', async () => ({
    name: 'plinth',
    version: PLINTH_VERSION,
    links: { docs: '/docs', openapi: '/docs/json', plugins: '/api/plugins', ready: '/health/ready', live: '/health/live' },
  }))

  app.get('/health/ready', async (request, reply) => {
    const failedHost = host.lastMigration?.tenants.filter((t) => t.source === 'host' && t.status !== 'ok') ?? []
    try {
      await withTimeout(host.pool.query('SELECT 1'), READY_TIMEOUT_MS)
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
    return {
      ok: true,
      database: host.db.kind,
      tenants: host.registry.size,
      tenantMigrationFailures: failedHost.length,
      changeFeed: { mode: changes.mode, lagMs: changes.lagMs },
    }
  })
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('timed out')), ms)
    }),
  ]).finally(() => clearTimeout(timer))
}
