// Turns an encapsulated Fastify context into a tenant scope: every route registered in it after
// installTenantScope() resolves its tenant first, then runs its handler in that tenant's
// transaction, and commits before the reply leaves.
//
//   onRequest (scope)    authenticate, settle the tenant (the credential's, or x-tenant / Host):
//                        401/403/404 before the body is parsed and before any client is taken
//   preHandler (route)   guards (rbac.require...), after validation, still without a client
//   handler (wrapped)    take a client, BEGIN + SET LOCAL search_path, run the handler
//   onSend               COMMIT if status < 400, else ROLLBACK; a failed COMMIT turns the reply into a 5xx
//   close                a client that went away: ROLLBACK once the handler is done
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteHandlerMethod } from 'fastify'
import type pg from 'pg'
import { prepareProblemReply, toProblem } from '../host/error-handler.ts'
import { problems } from '../host/errors.ts'
import type { IdentityProvider } from '../rbac/principal.ts'
import type { Tenant, TenantRegistry } from './registry.ts'
import { TenantTransaction, type TenantDb } from './transaction.ts'

declare module 'fastify' {
  interface FastifyRequest {
    tenant: Tenant | null
    db: TenantDb
    tenantTx: TenantTransaction | null
  }
}

export interface TenantScopeOptions {
  pool: pg.Pool
  registry: TenantRegistry
  identities?: IdentityProvider
}

/**
 * The request's tenant. With a credential, it is the credential's tenant, and an x-tenant header
 * or a Host naming another tenant is refused. Without one, it is the tenant the x-tenant header
 * names, else the one whose domain is the Host; if both name one, they must agree.
 */
export function resolveTenant(request: FastifyRequest, registry: TenantRegistry, boundTenantId: string | null = null): Tenant {
  const header = request.headers['x-tenant']
  const code = Array.isArray(header) ? header[0] : header
  const byHost = registry.byDomain(request.hostname)
  let tenant: Tenant | undefined
  if (boundTenantId) {
    tenant = registry.get(boundTenantId)
    // The credential's tenant is gone: the credential is no longer valid.
    if (!tenant) throw problems.unauthorized()
    if ((code && code !== tenant.code) || (byHost && byHost.id !== tenant.id)) throw problems.tenantMismatch()
  } else if (code) {
    tenant = registry.byCode(code)
    if (!tenant) throw problems.tenantNotFound()
    if (byHost && byHost.id !== tenant.id) throw problems.tenantMismatch()
  } else {
    tenant = byHost
    if (!tenant) throw problems.tenantRequired()
  }
  if (tenant.status !== 'active') throw problems.tenantSuspended()
  return tenant
}

/** Authenticates and settles the tenant: the credential's, or the one the request names. */
export async function identifyAndResolve(request: FastifyRequest, registry: TenantRegistry, identities?: IdentityProvider) {
  const identity = identities ? await identities.identify(request) : null
  const tenant = resolveTenant(request, registry, identity?.tenantId ?? null)
  request.tenant = tenant
  if (identity && identities) request.principal = { ...identity, permissions: await identities.permissions(identity, tenant) }
}

export function installTenantScope(scope: FastifyInstance, options: TenantScopeOptions) {
  const { pool, registry, identities } = options

  // onRequest: who is calling and for which tenant is settled before the body is even parsed.
  scope.addHook('onRequest', async function authenticateAndResolveTenant(request) {
    await identifyAndResolve(request, registry, identities)
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
