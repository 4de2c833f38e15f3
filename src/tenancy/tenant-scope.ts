// Turns an encapsulated Fastify context into a tenant scope: every route registered in it after
// installTenantScope() resolves its tenant first, then runs its handler in that tenant's
// transaction, and commits before the reply leaves.
//
//   preHandler (scope)   resolve the tenant from x-tenant or Host; 400/403/404 before any client
//   preHandler (route)   guards (rbac.require...) still without a client
//   handler (wrapped)    take a client, BEGIN + SET LOCAL search_path, run the handler
//   onSend               COMMIT if status < 400, else ROLLBACK; a failed COMMIT turns the reply into a 5xx
//   close                a client that went away: ROLLBACK once the handler is done
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteHandlerMethod } from 'fastify'
import type pg from 'pg'
import { prepareProblemReply, toProblem } from '../host/error-handler.ts'
import { problems } from '../host/errors.ts'
import type { Principal } from '../rbac/principal.ts'
import type { Tenant, TenantRegistry } from './registry.ts'
import { TenantTransaction, type TenantDb } from './transaction.ts'

declare module 'fastify' {
  interface FastifyRequest {
    tenant: Tenant | null
    db: TenantDb
    tenantTx: TenantTransaction | null
  }
}

/** Finds the caller's principal (null: no credential); the identity layer supplies it. */
export type Authenticate = (request: FastifyRequest) => Promise<Principal | null>

export interface TenantScopeOptions {
  pool: pg.Pool
  registry: TenantRegistry
  authenticate?: Authenticate
}

/** The tenant a request names: its x-tenant header, else its Host matched against tenant domains. */
export function resolveTenant(request: FastifyRequest, registry: TenantRegistry): Tenant {
  const header = request.headers['x-tenant']
  const code = Array.isArray(header) ? header[0] : header
  const byHost = registry.byDomain(request.hostname)
  let tenant: Tenant | undefined
  if (code) {
    tenant = registry.byCode(code)
    if (!tenant) throw problems.tenantNotFound()
    // Two ways of naming a tenant that disagree are refused, not settled by a precedence rule.
    if (byHost && byHost.id !== tenant.id) throw problems.tenantMismatch()
  } else {
    tenant = byHost
    if (!tenant) throw problems.tenantRequired()
  }
  if (tenant.status !== 'active') throw problems.tenantSuspended()
  return tenant
}

export function installTenantScope(scope: FastifyInstance, options: TenantScopeOptions) {
  const { pool, registry, authenticate } = options

  scope.addHook('preHandler', async function resolveRequestTenant(request) {
    if (authenticate) request.principal = await authenticate(request)
    request.tenant ??= resolveTenant(request, registry)
  })

  scope.addHook('onRoute', (route) => {
    route.handler = inRequestTransaction(route.handler as RouteHandlerMethod, pool)
  })

  scope.addHook('onSend', async function finishRequestTransaction(request, reply, payload) {
    const tx = request.tenantTx
    if (!tx || tx.finished) return payload
    if (reply.statusCode >= 400) {
      await tx.rollback()
      return payload
    }
    try {
      await tx.commit()
      return payload
    } catch (err) {
      return commitFailed(request, reply, err)
    }
  })
}

function inRequestTransaction(handler: RouteHandlerMethod, pool: pg.Pool): RouteHandlerMethod {
  return async function handleInTenantTransaction(this: FastifyInstance, request, reply) {
    const tx = await TenantTransaction.begin(pool, request.tenant!.schema)
    request.tenantTx = tx
    request.db = tx.db
    let settled = false
    // A client that disconnects mid-request: its reply may never reach onSend.
    reply.raw.once('close', () => {
      if (settled) void tx.rollback()
    })
    try {
      return await handler.call(this, request, reply)
    } catch (err) {
      await tx.rollback()
      throw err
    } finally {
      settled = true
      if (request.raw.destroyed && !reply.sent) await tx.rollback()
    }
  }
}

// The handler said yes but the database said no at COMMIT: the caller must not see a 2xx.
function commitFailed(request: FastifyRequest, reply: FastifyReply, err: unknown) {
  request.log.error({ err }, 'COMMIT failed; the response becomes an error')
  let problem = toProblem(err)
  if (problem.status < 500) problem = problems.internal()
  reply.removeHeader('content-length')
  return JSON.stringify(prepareProblemReply(request, reply, problem))
}
