// Which tenant a request is for, from what it names: its credential's tenant, the x-tenant header,
// the domain it was sent to. Plain values in; the HTTP layer reads them off the request.
import { problems } from '../problems.ts'
import type { Tenant, TenantRegistry } from './registry.ts'

export interface TenantNaming {
  /** The tenant the credential belongs to; null without a credential (or with the admin token). */
  boundTenantId: string | null
  /** The x-tenant header's code, if sent. */
  code: string | undefined
  /** The Host the request was sent to. */
  hostname: string
}

/**
 * With a credential, the tenant is the credential's, and an x-tenant header or a Host naming
 * another tenant is refused. Without one, it is the tenant the x-tenant header names, else the one
 * whose domain is the Host; if both name one, they must agree. A suspended tenant is refused.
 */
export function resolveTenant(registry: TenantRegistry, { boundTenantId, code, hostname }: TenantNaming): Tenant {
  const byHost = registry.byDomain(hostname)
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
