// Turns `Authorization: Bearer <credential>` into an identity: an API key (plk_...), a JWT from
// the configured identity provider, or the platform admin token. A credential that fails is a
// 401 that says only that; the log says why (expired, bad signature, revoked, unknown key...),
// and never the credential.
import { isAdminToken } from './admin-token.ts'
import { problems } from '../problems.ts'
import type { Tenant, TenantRegistry } from '../tenancy/registry.ts'
import { ApiKeys } from './api-keys.ts'
import type { FailureBrake } from './failure-brake.ts'
import { JwtVerifier } from './jwt.ts'
import type { PermissionSets } from './permission-sets.ts'
import type { Caller, Identity, IdentityProvider } from './principal.ts'

export class BearerIdentities implements IdentityProvider {
  constructor(
    private readonly keys: ApiKeys,
    private readonly jwt: JwtVerifier,
    private readonly registry: TenantRegistry,
    private readonly permissionSets: PermissionSets,
    private readonly adminToken: string | undefined,
    private readonly brake: FailureBrake,
  ) {}

  async identify(request: Caller): Promise<Identity | null> {
    const header = request.headers.authorization
    if (header === undefined) return null
    this.brake.check(request)
    if (!header.startsWith('Bearer ')) return this.refuse(request, 'not a Bearer credential')
    const token = header.slice(7).trim()
    if (ApiKeys.looksLikeKey(token)) {
      const result = await this.keys.verify(token)
      if ('reason' in result) return this.refuse(request, result.reason)
      return { id: `key:${result.key.id}`, kind: 'key', tenantId: result.key.tenantId }
    }
    if (isAdminToken(header, this.adminToken)) return { id: 'admin', kind: 'admin', tenantId: null }
    if (JwtVerifier.looksLikeJwt(token)) {
      const result = await this.jwt.verify(token)
      if ('reason' in result) return this.refuse(request, result.reason)
      const tenant = await this.registry.find(result.tenantCode)
      if (!tenant) return this.refuse(request, 'token names an unknown tenant')
      return { id: `user:${result.subject}`, kind: 'user', tenantId: tenant.id }
    }
    return this.refuse(request, 'unrecognised credential')
  }

  async permissions(identity: Identity, tenant: Tenant): Promise<ReadonlySet<string>> {
    if (identity.kind === 'admin') return this.permissionSets.all(tenant.id)
    return this.permissionSets.get(tenant, identity.id)
  }

  async recheckPermissions(identity: Identity, tenant: Tenant): Promise<ReadonlySet<string>> {
    if (identity.kind === 'admin') return this.permissionSets.all(tenant.id)
    return this.permissionSets.recheck(tenant, identity.id)
  }

  private refuse(request: Caller, reason: string): never {
    this.brake.failed(request, { reason }, 'authentication failed')
    throw problems.unauthorized()
  }
}
