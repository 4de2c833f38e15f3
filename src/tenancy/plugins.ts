// Which modules each tenant has (public.sys_tenant_plugin), cached like the tenant registry: a
// module route checks its tenant's enablement without a query, and a change on any instance
// reaches every instance through the change feed (topic `plugin`, key = tenant id).
import type pg from 'pg'
import { RefreshOrder } from './refresh-order.ts'
import { recordChange, type ChangeFeed } from './changes.ts'
import { inTransaction } from './transaction.ts'

export interface TenantPluginState {
  enabled: boolean
  status: 'ready' | 'failed'
  error: string | null
}

type Row = TenantPluginState & { tenantId: string; pluginId: string }

const SELECT = `SELECT tenant_id AS "tenantId", plugin_id AS "pluginId", enabled, status, error FROM public.sys_tenant_plugin`

export class TenantPlugins {
  private byTenant = new Map<string, Map<string, TenantPluginState>>()
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

  state(tenantId: string, pluginId: string): TenantPluginState | undefined {
    return this.byTenant.get(tenantId)?.get(pluginId)
  }

  /** Enabled module ids of a tenant. */
  enabledFor(tenantId: string): string[] {
    return [...(this.byTenant.get(tenantId)?.entries() ?? [])].filter(([, s]) => s.enabled).map(([id]) => id)
  }

  async setEnabled(tenantId: string, pluginId: string, enabled: boolean) {
    await this.write(
      tenantId,
      `INSERT INTO public.sys_tenant_plugin (tenant_id, plugin_id, enabled) VALUES ($1, $2, $3)
       ON CONFLICT (tenant_id, plugin_id) DO UPDATE SET enabled = EXCLUDED.enabled, updated_at = now()`,
      [tenantId, pluginId, enabled],
    )
  }

  /** Records how the module's migrations went for the tenant: its routes serve only when ready. */
  async setStatus(tenantId: string, pluginId: string, status: TenantPluginState['status'], error: string | null) {
    const current = this.state(tenantId, pluginId)
    if (current && current.status === status && current.error === error) return
    await this.write(
      tenantId,
      `UPDATE public.sys_tenant_plugin SET status = $3, error = $4, updated_at = now() WHERE tenant_id = $1 AND plugin_id = $2`,
      [tenantId, pluginId, status, error],
    )
  }

  private async write(tenantId: string, sql: string, params: unknown[]) {
    await inTransaction(this.pool, async (client) => {
      await client.query(sql, params)
      await recordChange(client, 'plugin', tenantId)
    })
    await this.changes?.announce('plugin', tenantId)
  }

  private put(row: Row) {
    let modules = this.byTenant.get(row.tenantId)
    if (!modules) this.byTenant.set(row.tenantId, (modules = new Map()))
    modules.set(row.pluginId, { enabled: row.enabled, status: row.status, error: row.error })
  }
}
