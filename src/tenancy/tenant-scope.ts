// Turns an encapsulated Fastify context into a tenant scope: every route registered in it after
// installTenantScope() resolves its tenant first, then runs its handler in that tenant's
// transaction, and commits before the reply leaves.
//
//   onRequest (scope)    authenticate, settle the tenant (the credential's, or x-tenant / Host):
//                        401/403/404 before the body is parsed and before any client is taken
//   preHandler (route)   guards (rbac.require...), after validation, still without a client
//   handler (wrapped)    take a client (within the tenant's fair share), BEGIN with the tenant's
//                        role, search_path and timeouts, run the handler; a scope opened
//                        'on-demand' leaves the opening to its routes (module routes open it after
//                        their guards, or when a guard calls withTenantTx)
//   onSend               COMMIT if status < 400 and the caller is still there, else ROLLBACK; a
//                        failed COMMIT turns the reply into a 5xx
//   handler's end        ROLLBACK when no onSend will come: the caller left and nothing was sent,
//                        or the handler took the raw response over (reply.hijack)
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteHandlerMethod } from 'fastify'
import { prepareProblemReply, problems, toProblem } from '../problems.ts'
import type { IdentityProvider } from '../rbac/principal.ts'
import type { CacheFreshness } from './changes.ts'
import type { Tenant, TenantRegistry } from './registry.ts'
import { TenantTransaction, type TenantDb, type TenantPool } from './transaction.ts'

declare module 'fastify' {
  interface FastifyRequest {
    tenant: Tenant | null
    /** Drizzle on the request's transaction (a getter: see requestDb). */
    readonly db: TenantDb
    tenantTx: TenantTransaction | null
    /** The request's transaction while it is being opened, so it opens once. */
    tenantTxOpening: Promise<TenantTransaction> | null
  }
}

export interface TenantScopeOptions extends TenantResolution {
  tenantPool: TenantPool
  /** 'before-handler' (default): each route's transaction opens before its handler runs. 'on-demand': routes open it. */
  openTransaction?: 'before-handler' | 'on-demand'
}

export type OpenRequestTransaction = (request: FastifyRequest, reply: FastifyReply) => Promise<TenantTransaction>

/** `req.db`: the request's open transaction, and a clear error anywhere else. */
export function requestDb(this: FastifyRequest): TenantDb {
  const tx = this.tenantTx
  if (tx && !tx.finished) return tx.db
  throw new Error(
    tx
      ? "req.db was used after the request's transaction ended (its response was sent); send the response last"
      : "req.db is not open here: a route's guards run before the request takes a database connection. Use req.db in the route's handler, or ctx.withTenantTx(req.tenant.id, db => ...) in a guard",
  )
}

/**
 * The request's tenant. With a credential, it is the credential's tenant, and an x-tenant header
 * or a Host naming another tenant is refused. Without one, it is the tenant the x-tenant header
 * names, else the one whose domain is the Host; if both name one, they must agree.
 */
export function resolveTenant(
  request: FastifyRequest,
  registry: TenantRegistry,
  boundTenantId: string | null = null,
  code: string | undefined = tenantHeader(request),
): Tenant {
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

export interface TenantResolution {
  registry: TenantRegistry
  identities?: IdentityProvider
  /** The change feed: while it has lost track past its bound, the caches are not served from. */
  freshness?: CacheFreshness
}

/** Authenticates and settles the tenant: the credential's, or the one the request names. */
export async function identifyAndResolve(request: FastifyRequest, { registry, identities, freshness }: TenantResolution) {
  if (freshness?.refusing()) throw problems.cachesStale()
  const identity = identities ? await identities.identify(request) : null
  const code = tenantHeader(request)
  // A tenant created a moment ago on another instance or by the CLI is read from the table (find
  // answers from the cache when it can). With a credential, its tenant is the one that counts.
  const named = identity?.tenantId ?? code
  if (named) await registry.find(named)
  const tenant = resolveTenant(request, registry, identity?.tenantId ?? null, code)
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

/** Makes `scope` a tenant scope; returns how its routes open the request's transaction. */
export function installTenantScope(scope: FastifyInstance, options: TenantScopeOptions): OpenRequestTransaction {
  const open = requestTransactionOpener(options.tenantPool)
  const openBeforeHandler = options.openTransaction !== 'on-demand'

  // onRequest: who is calling and for which tenant is settled before the body is even parsed.
  scope.addHook('onRequest', async function authenticateAndResolveTenant(request) {
    await identifyAndResolve(request, options)
  })

  scope.addHook('onRoute', (route) => {
    route.handler = inRequestTransaction(route.handler as RouteHandlerMethod, open, openBeforeHandler)
  })

  scope.addHook('onSend', async function finishRequestTransaction(request, reply, payload) {
    const tx = request.tenantTx ?? (request.tenantTxOpening && (await requestTransaction(request)))
    if (!tx || tx.finished) return payload
    // An error, or a caller who is gone and will never learn the outcome: nothing of it is kept.
    if (reply.statusCode >= 400 || request.raw.socket?.destroyed) {
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
  return open
}

function requestTransactionOpener(tenantPool: TenantPool): OpenRequestTransaction {
  return function openRequestTransaction(request, reply) {
    if (request.tenantTxOpening) return request.tenantTxOpening
    // Nothing would ever commit or roll back a transaction opened after the reply went out.
    if (reply.sent) return Promise.reject(new Error("the response was already sent; the request's transaction cannot open now"))
    request.tenantTxOpening = TenantTransaction.begin(tenantPool, request.tenant!).then((tx) => (request.tenantTx = tx))
    return request.tenantTxOpening
  }
}

/** The request's transaction, waiting for it if it is being opened; null if it never was. */
async function requestTransaction(request: FastifyRequest): Promise<TenantTransaction | null> {
  if (request.tenantTx || !request.tenantTxOpening) return request.tenantTx
  return request.tenantTxOpening.catch(() => null)
}

function inRequestTransaction(handler: RouteHandlerMethod, open: OpenRequestTransaction, openBeforeHandler: boolean): RouteHandlerMethod {
  return async function handleInTenantTransaction(this: FastifyInstance, request, reply) {
    try {
      if (openBeforeHandler) await open(request, reply)
      return await handler.call(this, request, reply)
    } catch (err) {
      const tx = await requestTransaction(request)
      await tx?.rollback()
      // A statement that failed because BEGIN or its settings did (the tenant was dropped a moment
      // ago) says less than why they failed.
      throw (await tx?.beginFailure()) ?? err
    } finally {
      // Fastify sends nothing for a handler that returns once its caller is gone, and nothing of
      // a hijacked reply passes onSend (a reply sent the usual way was finished there already).
      // A handler that answers later returns reply, and reply is a thenable that settles when the
      // response finishes or the caller leaves: this runs then, not before.
      if (reply.sent || request.raw.socket?.destroyed) await (await requestTransaction(request))?.rollback()
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
