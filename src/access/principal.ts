// Who is calling. The identity provider turns a credential into an Identity; once the request's
// tenant is settled, its permissions there make it a Principal. Null means no credential. rbac
// knows no HTTP framework: it reads what it needs of a request through Caller.
import type { Tenant } from '../tenancy/registry.ts'

/** What rbac reads of a request: its Authorization header, its client's address, its logger. */
export interface Caller {
  headers: { authorization?: string }
  ip: string
  log: { warn(line: object, message: string): void }
}

/** A request whose caller is settled: what a permission check reads. */
export interface Authorized {
  principal: Principal | null
}

export interface Identity {
  /** `key:<id>`, `user:<sub>`, or `admin`. */
  id: string
  kind: 'key' | 'user' | 'admin'
  /** The tenant the credential belongs to; null only for the platform admin. */
  tenantId: string | null
}

export interface Principal extends Identity {
  permissions: ReadonlySet<string>
  /**
   * Reads the permissions again, past the cache: a permission the cached set lacks may have been
   * granted a moment ago on another instance or by the CLI. Braked: 50 a second an instance.
   */
  recheck?: () => Promise<ReadonlySet<string>>
}

export interface IdentityProvider {
  /** The caller's identity; null without a credential; throws 401 for a credential that fails. */
  identify(request: Caller): Promise<Identity | null>
  /** What the identity may do in the tenant. */
  permissions(identity: Identity, tenant: Tenant): Promise<ReadonlySet<string>>
  /** The same, read again from the database rather than the cache (at most 50 a second an instance). */
  recheckPermissions?(identity: Identity, tenant: Tenant): Promise<ReadonlySet<string>>
}
