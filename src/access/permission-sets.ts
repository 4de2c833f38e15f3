// Each principal's effective permissions in its tenant, cached per instance: a hit costs no query.
// A tenant's entries are dropped when its roles or its modules change (change feed topics `rbac`
// and `module`), and a read that started before such a drop is not cached.
import type pg from 'pg'
import { Budget } from '../platform/budget.ts'
import type { Tenant } from '../tenancy/registry.ts'
import { quoteIdent } from '../platform/db/sql-names.ts'
import { effectivePermissions } from './permissions.ts'

interface TenantEntry {
  generation: number
  principals: Map<string, ReadonlySet<string>>
}

const RECHECKS_PER_SECOND = 50

export class PermissionSets {
  private byTenant = new Map<string, TenantEntry>()
  private readonly rechecks = new Budget(RECHECKS_PER_SECOND)

  constructor(
    private readonly pool: pg.Pool,
    /** The permissions declared by the modules enabled for a tenant. */
    private readonly catalog: (tenantId: string) => string[],
  ) {}

  async get(tenant: Tenant, principalId: string): Promise<ReadonlySet<string>> {
    const entry = this.entry(tenant.id)
    const cached = entry.principals.get(principalId)
    if (cached) return cached
    const generation = entry.generation
    const schema = quoteIdent(tenant.schema)
    const { rows } = await this.pool.query<{ permission: string }>(
      `SELECT DISTINCT g.permission FROM ${schema}.plinth_principal_role p JOIN ${schema}.plinth_role_grant g ON g.role_id = p.role_id
        WHERE p.principal_id = $1`,
      [principalId],
    )
    const permissions = effectivePermissions(rows.map((r) => r.permission), this.catalog(tenant.id))
    if (this.entry(tenant.id).generation === generation) entry.principals.set(principalId, permissions)
    return permissions
  }

  /**
   * The principal's permissions read again from its tenant's schema, for a check the cached set
   * would refuse: a grant made a moment ago elsewhere is honoured on the very next request. A
   * refusal is rare, so each costs one read, up to RECHECKS_PER_SECOND an instance; past that the
   * cached set answers (a flood of refused requests does not become a flood of queries).
   */
  async recheck(tenant: Tenant, principalId: string): Promise<ReadonlySet<string>> {
    if (this.rechecks.take()) this.entry(tenant.id).principals.delete(principalId)
    return this.get(tenant, principalId)
  }

  /** Everything declared for the tenant: what the platform admin holds there. */
  all(tenantId: string): ReadonlySet<string> {
    return new Set(this.catalog(tenantId))
  }

  invalidate(tenantId: string) {
    const entry = this.entry(tenantId)
    entry.generation++
    entry.principals = new Map()
  }

  private entry(tenantId: string): TenantEntry {
    let entry = this.byTenant.get(tenantId)
    if (!entry) this.byTenant.set(tenantId, (entry = { generation: 0, principals: new Map() }))
    return entry
  }
}
