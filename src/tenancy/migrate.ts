// `plinth migrate` and the start of every host: public migrations, then every tenant's pending
// files with bounded concurrency. Deciding that nothing is pending is one query on `public`; a
// tenant is visited only when it has something to apply. A failure stays with its tenant (and
// source): the run goes on and reports every tenant as ok, failed or skipped.
import pLimit from 'p-limit'
import type pg from 'pg'
import type { MigrationFile } from './migration-files.ts'
import {
  applyTenantFile,
  fileStep,
  findPendingTenantMigrations,
  migratePublic,
  stepsFromScratch,
  type MigrationSource,
  type MigrationStep,
  type PendingTenantMigration,
} from './migrations.ts'
import type { SchemaServer } from '../platform/db/scripts.ts'
import type { TenantPool } from './transaction.ts'

export interface TenantMigrationResult {
  tenant: string
  source: string
  status: 'ok' | 'failed' | 'skipped'
  applied: string[]
  error?: string
  /** It was failed for this tenant (this was why) and has nothing pending now: ready again. */
  recovered?: string
}

export interface MigrateReport {
  publicApplied: string[]
  tenants: TenantMigrationResult[]
}

export interface MigrateOptions {
  publicFiles: MigrationFile[]
  sources: MigrationSource[]
  concurrency: number
  /** Where tenant schemas live: on Citus, a file's statements are sent one by one (runScript). */
  server: SchemaServer
  /** Called once per tenant and source that failed, before the run goes on. */
  onFailure?: (result: TenantMigrationResult & { tenantId: string }) => Promise<void>
  /** Tenant connections: in 'login' mode a module's files run logged in as the tenant. */
  tenantPool?: TenantPool
  /** Called once per tenant and source that is fully applied. */
  onSuccess?: (result: TenantMigrationResult & { tenantId: string }) => Promise<void>
}

export async function migrateAll(pool: pg.Pool, options: MigrateOptions): Promise<MigrateReport> {
  const publicApplied = await migratePublic(pool, options.publicFiles)
  return { publicApplied, tenants: await migrateTenants(pool, options) }
}

/** Applies pending tenant files: for every tenant, or for one (`tenantId`). */
export async function migrateTenants(pool: pg.Pool, options: Omit<MigrateOptions, 'publicFiles'> & { tenantId?: string }) {
  const pending = await findPendingTenantMigrations(pool, options.sources, options.tenantId)
  return applyPending(pool, pending, options)
}

/** A tenant's pending files of one source as steps: from its baseline when the tenant has none of them yet. */
function stepsFor(source: MigrationSource, pending: PendingTenantMigration[]): MigrationStep[] {
  if (pending.length === source.files.length && pending.every((row) => row.appliedChecksum === null)) return stepsFromScratch(source)
  const byName = new Map(source.files.map((f) => [f.name, f]))
  return pending.map((row) => fileStep(byName.get(row.name)!))
}

async function applyPending(pool: pg.Pool, pending: PendingTenantMigration[], options: Omit<MigrateOptions, 'publicFiles'>) {
  const sourcesById = new Map(options.sources.map((s) => [s.source, s]))
  // One unit of work per tenant, its sources in the order given (the host's first).
  const byTenant = new Map<string, PendingTenantMigration[]>()
  for (const row of pending) {
    const rows = byTenant.get(row.tenantId)
    if (rows) rows.push(row)
    else byTenant.set(row.tenantId, [row])
  }
  const order = options.sources.map((s) => s.source)
  const results: TenantMigrationResult[] = []

  const migrateTenant = async (rows: PendingTenantMigration[]) => {
    const { tenantId, code, schema, role } = rows[0]
    let hostFailed = false
    for (const source of order) {
      const files = rows.filter((r) => r.source === source)
      if (files.length === 0) continue
      const result: TenantMigrationResult = { tenant: code, source, status: 'ok', applied: [] }
      if (hostFailed) {
        // Module tables may build on the host's: do not apply them over a failed base.
        result.status = 'skipped'
        result.error = 'the host migrations of this tenant failed'
      } else {
        for (const step of stepsFor(sourcesById.get(source)!, files)) {
          try {
            if ((await applyTenantFile(pool, { id: tenantId, schema, role }, source, step, options.server, options.tenantPool, { tenant: code })) === 'applied') {
              result.applied.push(...step.records.map((f) => f.name))
            }
          } catch (err) {
            result.status = 'failed'
            result.error = (err as Error).message
            break
          }
        }
      }
      if (result.status !== 'ok' && source === 'host') hostFailed = true
      results.push(result)
      if (result.status === 'ok') await options.onSuccess?.({ ...result, tenantId })
      else await options.onFailure?.({ ...result, tenantId })
    }
  }

  const limit = pLimit(Math.max(1, options.concurrency))
  await Promise.all([...byTenant.values()].map((tenant) => limit(() => migrateTenant(tenant))))
  return results.sort((a, b) => a.tenant.localeCompare(b.tenant) || order.indexOf(a.source) - order.indexOf(b.source))
}
