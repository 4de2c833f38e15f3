// The tenants of public.sys_tenant, held in memory: resolving a tenant on a request costs no query.
// Loaded whole at start (a thousand tenants is one small query) and refreshed row by row when the
// change feed says a tenant changed, on this instance or another.
import type pg from 'pg'
import { HttpProblem } from '../problems.ts'
import { MissLookups } from '../platform/miss-lookups.ts'
import { RefreshOrder } from '../platform/refresh-order.ts'

export interface Tenant {
  id: string
  code: string
  name: string
  domain: string | null
  schema: string
  /** The tenant's NOLOGIN database role: its requests and module migrations run under it. */
  role: string
  status: 'active' | 'suspended'
  createdAt: string
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/**
 * public.sys_tenant's columns as a Tenant: every query that reads or returns tenants names these.
 * The creation time comes as ISO 8601 text, as operators are shown it, with no Date made per row.
 */
export const TENANT_COLUMNS = `id, code, name, domain, schema_name AS schema, role_name AS role, status,
  to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS "createdAt"`

const SELECT_TENANT = `SELECT ${TENANT_COLUMNS} FROM public.sys_tenant`

/**
 * A page of tenants by code, those whose code, name or domain holds `search`, after the code
 * `after`: keyset paging on the code's index, as fast on the last page of 10,000 as on the first.
 */
export async function pageTenants(db: pg.Pool, { search, after, limit = 50 }: { search?: string; after?: string; limit?: number }): Promise<{ tenants: Tenant[]; next: string | null }> {
  const pattern = search ? `%${search.toLowerCase().replace(/[\\%_]/g, '\\$&')}%` : null
  const { rows } = await db.query<Tenant>(
    `${SELECT_TENANT} WHERE ($1::text IS NULL OR code > $1)
       AND ($2::text IS NULL OR code LIKE $2 OR lower(name) LIKE $2 OR domain LIKE $2)
     ORDER BY code LIMIT $3`,
    [after ?? null, pattern, limit + 1],
  )
  const tenants = rows.slice(0, limit)
  return { tenants, next: rows.length > limit ? tenants.at(-1)!.code : null }
}

/** Every tenant, by code, read from the table (not the cache): what operators list. */
export async function listTenants(db: pg.Pool | pg.PoolClient): Promise<Tenant[]> {
  const { rows } = await db.query<Tenant>(`${SELECT_TENANT} ORDER BY code`)
  return rows
}

/** One tenant by code, read from the table; TENANT_NOT_FOUND when there is none. */
export async function tenantByCode(db: pg.Pool | pg.PoolClient, code: string): Promise<Tenant> {
  const { rows } = await db.query<Tenant>(`${SELECT_TENANT} WHERE code = $1`, [code])
  if (!rows[0]) throw tenantNotFound(code)
  return rows[0]
}

export function tenantNotFound(code: string) {
  return new HttpProblem(404, 'TENANT_NOT_FOUND', `No tenant has the code ${JSON.stringify(code)}.`)
}

export class TenantRegistry {
  private byId = new Map<string, Tenant>()
  private byCodeMap = new Map<string, Tenant>()
  private byDomainMap = new Map<string, Tenant>()
  private order = new RefreshOrder()

  constructor(
    private readonly pool: pg.Pool,
    /** Loads what other caches keep per tenant, for a tenant found by a miss lookup. */
    private readonly loadAlongside?: (tenantId: string) => Promise<void>,
  ) {}

  async load() {
    const { rows } = await this.pool.query<Tenant>(SELECT_TENANT)
    this.byId.clear()
    this.byCodeMap.clear()
    this.byDomainMap.clear()
    for (const row of rows) this.put(row)
  }

  /**
   * Re-reads one tenant by id; a tenant that is gone leaves the cache. The cached entry stays
   * until the new one is read (a request meanwhile sees the old state, never no tenant), and a
   * read that finishes after a newer one is dropped.
   */
  async refresh(id: string) {
    const ticket = this.order.begin()
    const { rows } = await this.pool.query<Tenant>(`${SELECT_TENANT} WHERE id = $1`, [id])
    if (!this.order.isCurrent(id, ticket)) return
    const stale = this.byId.get(id)
    if (stale) this.remove(stale)
    if (rows[0]) this.put(rows[0])
  }

  /**
   * A tenant by id or code: from the cache, else from the table (created on another instance or
   * by the CLI a moment ago, before its change reached this one). Undefined when there is none.
   * Lookups are braked (miss-lookups.ts): a request naming made-up tenants costs little.
   */
  async find(idOrCode: string): Promise<Tenant | undefined> {
    return this.byId.get(idOrCode) ?? this.byCodeMap.get(idOrCode) ?? this.missLookups.find(idOrCode)
  }

  private missLookups = new MissLookups<Tenant>(async (idOrCode) => {
    const byId = UUID.test(idOrCode)
    const { rows } = await this.pool.query<{ id: string }>(`SELECT id FROM public.sys_tenant WHERE ${byId ? 'id = $1' : 'code = $1'}`, [idOrCode])
    if (!rows[0]) return undefined
    await Promise.all([this.refresh(rows[0].id), this.loadAlongside?.(rows[0].id)])
    return this.byId.get(rows[0].id)
  })

  byCode(code: string) {
    return this.byCodeMap.get(code)
  }

  byDomain(domain: string) {
    return this.byDomainMap.get(domain.toLowerCase())
  }

  get(id: string) {
    return this.byId.get(id)
  }

  list(): Tenant[] {
    return [...this.byCodeMap.values()].sort((a, b) => a.code.localeCompare(b.code))
  }

  get size() {
    return this.byId.size
  }

  private put(tenant: Tenant) {
    this.missLookups.forget(tenant.id)
    this.missLookups.forget(tenant.code)
    tenant.createdAt = new Date(tenant.createdAt).toISOString()
    this.byId.set(tenant.id, tenant)
    this.byCodeMap.set(tenant.code, tenant)
    if (tenant.domain) this.byDomainMap.set(tenant.domain.toLowerCase(), tenant)
  }

  private remove(tenant: Tenant) {
    this.byId.delete(tenant.id)
    this.byCodeMap.delete(tenant.code)
    if (tenant.domain) this.byDomainMap.delete(tenant.domain.toLowerCase())
  }
}
