// The contract's ctx.withTenantTx(tenantId, work). Inside a request it joins that request's own
// transaction, on its own client, under a SAVEPOINT: a module written the seed's way (all its
// database work through withTenantTx) neither takes a second client per request, which would
// starve the pool and deadlock the embedded database's single connection, nor commits apart from
// the request it serves. Outside a request (a timer, background work, or after the response was
// sent) it runs in a transaction of its own, for an active tenant that has the module enabled.
import { currentRequest } from './current-request.ts'
import type { Tenant, TenantRegistry } from './registry.ts'
import { runInTenantTransaction, type TenantDb, type TenantPool } from './transaction.ts'

/** A module asked for a tenant no one has: its own mistake, told plainly. */
export class UnknownTenantError extends Error {
  constructor(idOrCode: unknown) {
    super(`withTenantTx: no tenant has the id or code ${JSON.stringify(idOrCode)}`)
    this.name = 'UnknownTenantError'
  }
}

/** Inside a request, a module works in that request's tenant only. */
export class CrossTenantError extends Error {
  constructor(requested: string, requestTenant: Tenant) {
    super(
      `withTenantTx(${JSON.stringify(requested)}) was called while handling a request for tenant "${requestTenant.code}": ` +
        `inside a request a module works in the request's tenant only (use req.tenant.id); nothing was run`,
    )
    this.name = 'CrossTenantError'
  }
}

/** Outside a request, a module works only for a tenant that is active and has the module enabled. */
export class TenantUnavailableError extends Error {
  constructor(tenant: Tenant, why: string) {
    super(`withTenantTx(${JSON.stringify(tenant.code)}): ${why}; nothing was run`)
    this.name = 'TenantUnavailableError'
  }
}

/** Whether a module is enabled and ready for a tenant (tenancy/tenant-modules.ts's cached rows). */
export interface ModuleEnablement {
  state(tenantId: string, moduleId: string): { enabled: boolean; status: 'ready' | 'failed' } | undefined
}

export async function withTenantTx<T>(
  tenantPool: TenantPool,
  registry: TenantRegistry,
  tenantIdOrCode: string,
  work: (db: TenantDb) => Promise<T>,
  module?: { id: string; enablement: ModuleEnablement },
): Promise<T> {
  const inProgress = currentRequest.getStore()
  const requestTenant = inProgress?.tenant
  if (requestTenant && inProgress.transaction && !inProgress.answered()) {
    if (tenantIdOrCode !== requestTenant.id && tenantIdOrCode !== requestTenant.code) {
      const other = registry.get(tenantIdOrCode) ?? registry.byCode(tenantIdOrCode)
      throw new CrossTenantError(other ? other.code : String(tenantIdOrCode), requestTenant)
    }
    const tx = await inProgress.transaction.open()
    if (!tx.finished) return tx.inSavepoint(work)
  }
  const tenant = typeof tenantIdOrCode === 'string' ? await registry.find(tenantIdOrCode) : undefined
  if (!tenant) throw new UnknownTenantError(tenantIdOrCode)
  if (tenant.status !== 'active') throw new TenantUnavailableError(tenant, `the tenant is ${tenant.status}`)
  if (module) {
    const state = module.enablement.state(tenant.id, module.id)
    if (!state?.enabled) throw new TenantUnavailableError(tenant, `module ${module.id} is not enabled for the tenant`)
    if (state.status !== 'ready') throw new TenantUnavailableError(tenant, `module ${module.id} failed its migrations for the tenant`)
  }
  return runInTenantTransaction(tenantPool, tenant, work)
}
