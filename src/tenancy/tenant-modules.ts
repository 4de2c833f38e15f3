// Which modules each tenant has (public.sys_tenant_module), cached like the tenant registry: a
// module route checks its tenant's enablement without a query, and a change on any instance
// reaches every instance through the change feed (topic `module`, key = tenant id).
import type pg from 'pg'
import { RefreshOrder } from '../platform/refresh-order.ts'
import { recordChange, type ChangeFeed } from '../platform/db/changes.ts'
import { inTransaction } from '../platform/db/platform-transaction.ts'
import { appendAudit, type AuditEvent } from '../platform/audit/append.ts'

export interface TenantModuleState {
  enabled: boolean
  status: 'ready' | 'failed'
  error: string | null
}

type Row = TenantModuleState & { tenantId: string; moduleId: string }

const SELECT = `SELECT tenant_id AS "tenantId", module_id AS "moduleId", enabled, status, error FROM public.sys_tenant_module`

export class TenantModules {
  private byTenant = new Map<string, Map<string, TenantModuleState>>()
  private order = new RefreshOrder()

  constructor(
    private readonly pool: pg.Pool,
    private readonly changes?: ChangeFeed,
  ) {}

  async load() {
    const { rows } = await this.pool.query<Row>(SELECT)
    this.byTenant.clear()
    for (const row of rows) this.put(row)
  }

  /** Re-reads one tenant's modules; the old state serves until the new one is read. */
  async refresh(tenantId: string) {
    const ticket = this.order.begin()
    const { rows } = await this.pool.query<Row>(`${SELECT} WHERE tenant_id = $1`, [tenantId])
    if (!this.order.isCurrent(tenantId, ticket)) return
    this.byTenant.delete(tenantId)
    for (const row of rows) this.put(row)
  }

  state(tenantId: string, moduleId: string): TenantModuleState | undefined {
    return this.byTenant.get(tenantId)?.get(moduleId)
  }

  /** Enabled module ids of a tenant. */
  enabledFor(tenantId: string): string[] {
    return [...(this.byTenant.get(tenantId)?.entries() ?? [])].filter(([, s]) => s.enabled).map(([id]) => id)
  }

  async setEnabled(tenant: { id: string; code: string }, moduleId: string, enabled: boolean) {
    await this.write(
      tenant.id,
      `INSERT INTO public.sys_tenant_module (tenant_id, module_id, enabled) VALUES ($1, $2, $3)
       ON CONFLICT (tenant_id, module_id) DO UPDATE SET enabled = EXCLUDED.enabled, updated_at = now()`,
      [tenant.id, moduleId, enabled],
      { action: enabled ? 'module.enabled' : 'module.disabled', target: moduleId, tenant: tenant.code, module: moduleId },
    )
  }

  /** Records how the module's migrations went for the tenant: its routes serve only when ready. */
  async setStatus(tenantId: string, moduleId: string, status: TenantModuleState['status'], error: string | null) {
    const current = this.state(tenantId, moduleId)
    if (current && current.status === status && current.error === error) return
    await this.write(
      tenantId,
      `UPDATE public.sys_tenant_module SET status = $3, error = $4, updated_at = now() WHERE tenant_id = $1 AND module_id = $2`,
      [tenantId, moduleId, status, error],
    )
  }

  /** Modules enabled for a tenant whose migrations failed there: what a migrate may find ready again. */
  async enabledButFailed(): Promise<{ tenantId: string; code: string; moduleId: string; error: string | null }[]> {
    const { rows } = await this.pool.query(
      `SELECT m.tenant_id AS "tenantId", t.code, m.module_id AS "moduleId", m.error
         FROM public.sys_tenant_module m JOIN public.sys_tenant t ON t.id = m.tenant_id
        WHERE m.enabled AND m.status = 'failed'`,
    )
    return rows
  }

  /** One write and its change; `event` audited with them when an actor asked for it (a status a migration set is its own row's). */
  private async write(tenantId: string, sql: string, params: unknown[], event?: AuditEvent) {
    await inTransaction(this.pool, async (client) => {
      await client.query(sql, params)
      await recordChange(client, 'module', tenantId)
      if (event) await appendAudit(client, event)
    })
    await this.changes?.announce('module', tenantId)
  }

  private put(row: Row) {
    let modules = this.byTenant.get(row.tenantId)
    if (!modules) this.byTenant.set(row.tenantId, (modules = new Map()))
    modules.set(row.moduleId, { enabled: row.enabled, status: row.status, error: row.error })
  }
}
