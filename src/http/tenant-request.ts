// The life of a tenant request, in order. Every route registered in a tenant scope
// (installTenantScope) goes through these stages, each a call into a layer below:
//
//   1. identify   onRequest     who is calling: an API key, a JWT or the admin token (rbac), before
//                               the body is parsed and before any client is taken
//   2. resolve    onRequest     which tenant: the credential's, or x-tenant / Host (tenancy);
//                               401, 403 or 404 here; the request's transaction object is made
//   3. guards     preHandler    rbac.require... (a module's guards run in its chain), after
//                               validation, still without a database client
//   4. open       handler       the request's transaction (tenancy/transaction.ts, RequestTransaction): a client
//                               within the tenant's fair share, BEGIN as the tenant's role with its
//                               search_path and timeouts; module routes open it when their chain
//                               reaches the handler, or when a guard calls withTenantTx
//   5. handler    handler       the route's own code, on req.db
//   6. end        onSend        COMMIT if the status is below 400 and the caller is still there,
//                               else ROLLBACK; a COMMIT that fails turns the reply into a 5xx. When
//                               no onSend comes (the caller left, the reply was hijacked), the
//                               handler's end rolls back.
//   7. account    onResponse    one log line and the request metrics (request-context.ts)
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteHandlerMethod } from 'fastify'
import { prepareProblemReply, problems, toProblem } from '../problems.ts'
import type { IdentityProvider, Principal } from '../access/principal.ts'
import type { CacheFreshness } from '../platform/db/changes.ts'
import type { Tenant, TenantRegistry } from '../tenancy/registry.ts'
import { RequestTransaction } from '../tenancy/transaction.ts'
import { resolveTenant } from '../tenancy/resolve-tenant.ts'
import type { TenantDb, TenantPool } from '../tenancy/transaction.ts'

declare module 'fastify' {
  interface FastifyRequest {
    /** Who is calling, once identified (stage 1); null without a credential. */
    principal: Principal | null
    tenant: Tenant | null
    /** The request's transaction, on tenant routes: its whole state (RequestTransaction, tenancy/transaction.ts). */
    transaction: RequestTransaction | null
    /** Drizzle on the request's transaction (a getter: requestDb, tenancy/transaction.ts). */
    readonly db: TenantDb
  }
}

export interface TenantResolution {
  registry: TenantRegistry
  identities?: IdentityProvider
  /** The change feed: while it has lost track past its bound, the caches are not served from. */
  freshness?: CacheFreshness
}

export interface TenantScopeOptions extends TenantResolution {
  tenantPool: TenantPool
  /** 'before-handler' (default): the transaction opens before each handler. 'on-demand': module routes open it (stage 4). */
  openTransaction?: 'before-handler' | 'on-demand'
}

/** Stages 1 and 2: authenticates, and settles the tenant (the credential's, or the one the request names). */
export async function identifyAndResolve(request: FastifyRequest, { registry, identities, freshness }: TenantResolution) {
  if (freshness?.refusing()) throw problems.cachesStale()
  const identity = identities ? await identities.identify(request) : null
  const code = tenantHeader(request)
  // A tenant created a moment ago on another instance or by the CLI is read from the table (find
  // answers from the cache when it can). With a credential, its tenant is the one that counts.
  const named = identity?.tenantId ?? code
  if (named) await registry.find(named)
  const tenant = resolveTenant(registry, { boundTenantId: identity?.tenantId ?? null, code, hostname: request.hostname })
  request.tenant = tenant
  if (identity && identities) {
    const recheck = identities.recheckPermissions && (() => identities.recheckPermissions!(identity, tenant))
    request.principal = { ...identity, permissions: await identities.permissions(identity, tenant), recheck }
  }
}

const tenantHeader = (request: FastifyRequest) => {
  const header = request.headers['x-tenant']
  return Array.isArray(header) ? header[0] : header
}

/** Makes `scope` a tenant scope: its routes, registered after this, go through every stage above. */
export function installTenantScope(scope: FastifyInstance, options: TenantScopeOptions) {
  const openBeforeHandler = options.openTransaction !== 'on-demand'

  scope.addHook('onRequest', async function identifyAndResolveTenant(request) {
    await identifyAndResolve(request, options)
    request.transaction = new RequestTransaction(options.tenantPool, request.tenant!)
  })

  scope.addHook('onRoute', (route) => {
    route.handler = inRequestTransaction(route.handler as RouteHandlerMethod, openBeforeHandler)
  })

  scope.addHook('onSend', async function endRequestTransaction(request, reply, payload) {
    // An error, or a caller who is gone and will never learn the outcome: nothing of it is kept.
    const keep = reply.statusCode < 400 && !request.raw.socket?.destroyed
    try {
      await request.transaction?.finish(keep)
      return payload
    } catch (err) {
      return commitFailed(request, reply, err)
    }
  })
}

function inRequestTransaction(handler: RouteHandlerMethod, openBeforeHandler: boolean): RouteHandlerMethod {
  return async function handleInTenantTransaction(this: FastifyInstance, request, reply) {
    const tx = request.transaction!
    try {
      if (openBeforeHandler) await tx.open()
      return await handler.call(this, request, reply)
    } catch (err) {
      await tx.abandon({ over: false })
      // A statement that failed because BEGIN or its settings did (the tenant was dropped a moment
      // ago) says less than why they failed.
      throw (await tx.beginFailure()) ?? err
    } finally {
      // Fastify sends nothing for a handler that returns once its caller is gone, and nothing of
      // a hijacked reply passes onSend (a reply sent the usual way was finished there already).
      // A handler that answers later returns reply, and reply is a thenable that settles when the
      // response finishes or the caller leaves: this runs then, not before.
      if (reply.sent || request.raw.socket?.destroyed) await tx.abandon({ over: true })
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
