// One plinth process's services (built by compose.ts) and what is done with several of them at
// once: opening (migrate or refuse, then load the caches), enabling a module, issuing a key,
// migrating, closing. The HTTP app (app.ts) and the CLI's commands that write open a Host; only
// the app listens.
import type pg from 'pg'
import type { Logger } from 'pino'
import type { ApiKeys } from '../access/api-keys.ts'
import type { ConsoleSessions } from '../access/console-sessions.ts'
import type { PermissionSets } from '../access/permission-sets.ts'
import type { Roles } from '../access/roles.ts'
import { recordChange, type ChangeFeed } from '../platform/db/changes.ts'
import type { Database } from '../platform/db/database.ts'
import { migrateAll, migrateTenants, type MigrateReport, type TenantMigrationResult } from '../tenancy/migrate.ts'
import { pendingPublicMigrations } from '../tenancy/migration-files.ts'
import { findPendingTenantMigrations, type MigrationSource } from '../tenancy/migrations.ts'
import { PLATFORM_SEARCH_PATH } from '../platform/db/platform-transaction.ts'
import { appendAuditAlone } from '../platform/audit/append.ts'
import type { TenantRegistry } from '../tenancy/registry.ts'
import { quoteIdent } from '../platform/db/sql-names.ts'
import type { SchemaServer } from '../platform/db/scripts.ts'
import type { TenantConnections } from '../tenancy/tenant-connections.ts'
import type { TenantLogins } from '../tenancy/tenant-login.ts'
import type { TenantModules } from '../tenancy/tenant-modules.ts'
import type { Tenants } from '../tenancy/tenants.ts'
import type { TenantDb, TenantPool } from '../tenancy/transaction.ts'
import { withTenantTx } from '../tenancy/with-tenant-tx.ts'
import { HttpProblem } from '../problems.ts'
import { openServices, readHostMigrationFiles, type HostMigrationFiles, type RequestServices, type ServiceOptions, type Services } from './compose.ts'
import type { Config } from './config.ts'
import type { ModuleRecord } from '../modules/discovery.ts'
import type { JobDefinitions } from '../jobs/definitions.ts'
import type { JobRunner } from '../jobs/runner.ts'
import { installJobQueue } from '../jobs/queue-schema.ts'


export interface MigrationStatus {
  pending: { tenant: string; source: string; files: string[] }[]
  failed: { tenant: string; module: string; error: string | null }[]
}

export interface HostOptions extends ServiceOptions {
  /** Keep caches fresh from other processes' changes; the CLI, which lives for one command, does not. */
  followChanges?: boolean
  /**
   * Apply pending migrations as it opens (the server's start, `plinth migrate`); false: refuse a
   * database whose public migrations are pending (PendingMigrationsError) and apply nothing, unless
   * the database has none of them yet: a new database is set up whatever opens it first.
   */
  migrate?: boolean
}

export class Host {
  readonly config: Config
  readonly log: Logger
  readonly db: Database
  readonly server: SchemaServer
  readonly modules: readonly ModuleRecord[]
  readonly logins: TenantLogins
  readonly tenantConnections: TenantConnections | undefined
  readonly changes: ChangeFeed
  readonly tenantModules: TenantModules
  readonly permissionSets: PermissionSets
  readonly roles: Roles
  readonly registry: TenantRegistry
  readonly tenantPool: TenantPool
  readonly tenants: Tenants
  readonly keys: ApiKeys
  readonly consoleSessions: ConsoleSessions
  readonly jobDefinitions: JobDefinitions
  readonly jobs: JobRunner
  /** Identities, the brake and metrics: for serving requests (compose.ts); the CLI opens without them. */
  readonly requests: RequestServices | undefined
  /** The migrations of the host and of each loaded module, in the order they apply. */
  readonly migrationSources: () => MigrationSource[]
  private readonly hostFiles: HostMigrationFiles
  /** What the last migrate() did; undefined when this host opened without migrating. */
  lastMigration: MigrateReport | undefined

  private constructor(services: Services) {
    ;({
      config: this.config,
      log: this.log,
      db: this.db,
      server: this.server,
      modules: this.modules,
      logins: this.logins,
      tenantConnections: this.tenantConnections,
      changes: this.changes,
      tenantModules: this.tenantModules,
      permissionSets: this.permissionSets,
      roles: this.roles,
      registry: this.registry,
      tenantPool: this.tenantPool,
      tenants: this.tenants,
      keys: this.keys,
      consoleSessions: this.consoleSessions,
      jobDefinitions: this.jobDefinitions,
      jobs: this.jobs,
      requests: this.requests,
      migrationSources: this.migrationSources,
      hostFiles: this.hostFiles,
    } = services)
  }

  /** Opens the database with every service on it, migrates (or refuses what is pending), and loads the caches. */
  static async open(options: HostOptions): Promise<Host> {
    // Without migrating, a pending public migration is refused before any module is imported.
    const host = new Host(await openServices({ ...options, refusePending: options.migrate === false }))
    try {
      if (options.migrate !== false || (await host.isNewDatabase())) await host.migrate()
      await host.registry.load()
      await host.tenantModules.load()
      await host.keys.load()
      if (options.followChanges !== false) await host.changes.start()
    } catch (err) {
      await host.close().catch(() => {})
      throw err
    }
    const { db } = host
    host.log.info({ database: db.kind, location: db.location, tenants: host.registry.size, ...(db.citus ? { citus: db.citus } : {}) }, 'database ready')
    return host
  }

  get pool() {
    return this.db.pool
  }

  /** No public migration was ever applied here. */
  private async isNewDatabase() {
    return (await pendingPublicMigrations(this.pool, this.hostFiles.public)).length === this.hostFiles.public.length
  }

  /** A module's migrations succeeding or failing for a tenant decides whether its routes serve there. */
  private recordModuleResult = async (result: TenantMigrationResult & { tenantId: string }) => {
    if (result.status === 'failed') {
      // Its step rolled back, so there is no transaction of the change to write the row in: one of its own.
      const module = result.source === 'host' ? null : result.source
      await appendAuditAlone(this.pool, { action: 'migration.failed', target: result.source, tenant: result.tenant, module, outcome: 'failure', changes: { error: result.error ?? null } })
    }
    if (result.source === 'host') return
    await this.tenantModules.setStatus(result.tenantId, result.source, result.status === 'ok' ? 'ready' : 'failed', result.error ?? null)
  }

  /** How many tenants a migrate works on at once: each holds a platform connection (and, for a module's file, a tenant's). */
  get migrationConcurrency() {
    if (this.db.kind === 'embedded') return 1
    const platform = this.tenantConnections ? this.config.dbPlatformPoolMax : this.config.dbPoolMax
    return Math.max(1, Math.min(8, platform - 1, this.config.dbPoolMax))
  }

  /** The connections tenant work is lent: the tenants' own in 'login' mode, else the platform pool. */
  get tenantClientPool(): { totalCount: number; idleCount: number; waitingCount: number } {
    return this.tenantConnections ?? this.pool
  }

  /** Enables a module for a tenant and applies its pending migrations there. */
  async enableModule(tenantCode: string, moduleId: string): Promise<TenantMigrationResult> {
    const tenant = await this.tenants.get(tenantCode)
    const record = this.modules.find((m) => m.id === moduleId)
    if (!record) throw new HttpProblem(404, 'MODULE_NOT_FOUND', `No module has the id ${JSON.stringify(moduleId)}.`)
    if (record.status !== 'loaded') throw new HttpProblem(409, 'MODULE_UNAVAILABLE', `Module ${moduleId} is ${record.status}; fix it before enabling it.`)
    await this.tenantModules.setEnabled(tenant, moduleId, true)
    const [result] = await this.migrateOne(tenant.id, [{ source: moduleId, files: record.migrations, baseline: record.baseline }])
    if (!result) await this.tenantModules.setStatus(tenant.id, moduleId, 'ready', null)
    return result ?? { tenant: tenant.code, source: moduleId, status: 'ok', applied: [] }
  }

  /**
   * Applies what is pending for one tenant (the console's retry, `plinth migrate --tenant`): the
   * host's files and those of every module it has enabled, each failure recorded as migrate's are.
   */
  async migrateTenant(code: string): Promise<TenantMigrationResult[]> {
    const tenant = await this.tenants.get(code)
    const results = await this.migrateOne(tenant.id, this.migrationSources())
    return [...results, ...(await this.recoverFailedModules({ publicApplied: [], tenants: results }, code))]
  }

  /** What is pending of `sources` for one tenant, applied, each result recorded as migrate records it. */
  private migrateOne(tenantId: string, sources: MigrationSource[]) {
    return migrateTenants(this.pool, {
      sources,
      concurrency: 1,
      server: this.server,
      tenantPool: this.tenantPool,
      tenantId,
      onSuccess: this.recordModuleResult,
      onFailure: this.recordModuleResult,
    })
  }

  /** What is left to do across tenants: files pending per tenant and source, and modules whose migrations failed. */
  async migrationStatus(): Promise<MigrationStatus> {
    const pending = new Map<string, { tenant: string; source: string; files: string[] }>()
    for (const row of await findPendingTenantMigrations(this.pool, this.migrationSources())) {
      const key = `${row.code}\n${row.source}`
      const entry = pending.get(key) ?? { tenant: row.code, source: row.source, files: [] }
      entry.files.push(row.name)
      pending.set(key, entry)
    }
    const failed = (await this.tenantModules.enabledButFailed()).map((row) => ({ tenant: row.code, module: row.moduleId, error: row.error }))
    return { pending: [...pending.values()], failed: failed.sort((a, b) => a.tenant.localeCompare(b.tenant) || a.module.localeCompare(b.module)) }
  }

  /** Issues an API key for a tenant, holding `roles` there; the key's secret is in the result, once. */
  async createKey(tenantCode: string, name: string, roles: string[] = []) {
    const tenant = await this.tenants.get(tenantCode)
    const assignRoles = async (client: pg.PoolClient, keyId: string) => {
      if (roles.length === 0) return
      await client.query(PLATFORM_SEARCH_PATH)
      for (const role of roles) await this.roles.assignWith(client, quoteIdent(tenant.schema), role, `key:${keyId}`)
      await recordChange(client, 'rbac', tenant.id)
    }
    const created = await this.keys.create(tenant, name, assignRoles, roles)
    if (roles.length > 0) await this.changes.announce('rbac', tenant.id)
    return created
  }

  /** Disables a module for a tenant: its routes answer 404 there; its tables and data stay. */
  async disableModule(tenantCode: string, moduleId: string) {
    const tenant = await this.tenants.get(tenantCode)
    if (!this.tenantModules.state(tenant.id, moduleId) && !this.modules.some((m) => m.id === moduleId)) {
      throw new HttpProblem(404, 'MODULE_NOT_FOUND', `No module has the id ${JSON.stringify(moduleId)}.`)
    }
    await this.tenantModules.setEnabled(tenant, moduleId, false)
  }

  async migrate(): Promise<MigrateReport> {
    // Read again: a file added since this host opened is applied too (migrationSources reads these).
    Object.assign(this.hostFiles, await readHostMigrationFiles(this.hostFiles.dir))
    const report = await migrateAll(this.pool, {
      publicFiles: this.hostFiles.public,
      sources: this.migrationSources(),
      concurrency: this.migrationConcurrency,
      server: this.server,
      tenantPool: this.tenantPool,
      onSuccess: this.recordModuleResult,
      onFailure: this.recordModuleResult,
    })
    await installJobQueue(this.pool, this.log)
    report.tenants.push(...(await this.recoverFailedModules(report)))
    for (const result of report.tenants.filter((r) => r.status !== 'ok')) {
      this.log.error({ tenant: result.tenant, source: result.source, status: result.status, reason: result.error }, 'tenant migration did not complete')
    }
    if (report.publicApplied.length > 0) this.log.info({ applied: report.publicApplied }, 'applied public migrations')
    this.lastMigration = report
    return report
  }

  /**
   * A module `failed` for a tenant with nothing pending there any more (an edited migration put
   * back as it was applied) is ready again: migrate is how an operator recovers, not `module enable`.
   */
  private async recoverFailedModules(report: MigrateReport, onlyTenant?: string): Promise<TenantMigrationResult[]> {
    const recovered: TenantMigrationResult[] = []
    for (const row of await this.tenantModules.enabledButFailed()) {
      // A migrate of one tenant tried no other: what is pending elsewhere it did not look for.
      if (onlyTenant !== undefined && row.code !== onlyTenant) continue
      const loaded = this.modules.some((m) => m.id === row.moduleId && m.status === 'loaded')
      const triedNow = report.tenants.some((r) => r.tenant === row.code && (r.source === row.moduleId || (r.source === 'host' && r.status !== 'ok')))
      if (!loaded || triedNow) continue
      await this.tenantModules.setStatus(row.tenantId, row.moduleId, 'ready', null)
      this.log.info({ tenant: row.code, module: row.moduleId, was: row.error }, 'module ready again for the tenant: nothing of it is pending there')
      recovered.push({ tenant: row.code, source: row.moduleId, status: 'ok', applied: [], recovered: row.error ?? 'failed before' })
    }
    return recovered
  }

  /**
   * The contract's withTenantTx (tenancy/with-tenant-tx.ts): joins the request in progress, if any.
   * For a module (`moduleId`), outside a request only where the module is enabled.
   */
  withTenantTx<T>(tenantIdOrCode: string, work: (db: TenantDb) => Promise<T>, moduleId?: string): Promise<T> {
    return withTenantTx(this.tenantPool, this.registry, tenantIdOrCode, work, moduleId ? { id: moduleId, enablement: this.tenantModules } : undefined)
  }

  async close() {
    await this.jobs.stop()
    await this.requests?.authFailures.stop()
    await this.requests?.auditCheckpoints.stop()
    await this.changes.stop()
    await this.tenantConnections?.end()
    await this.db.close()
  }
}
