// The services one plinth process holds, with or without an HTTP server: the database, its
// bootstrap, the tenant registry and the change feed that keeps it fresh. The HTTP app (app.ts)
// and the CLI both open a Host; only the app listens.
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Logger } from 'pino'
import { ChangeFeed, recordChange } from '../tenancy/changes.ts'
import { quoteIdent } from '../tenancy/schema-name.ts'
import { openDatabase, type Database } from '../tenancy/database.ts'
import { migrateAll, migrateTenants, type MigrateReport, type TenantMigrationResult } from '../tenancy/migrate.ts'
import { PendingMigrationsError, pendingPublicMigrations, readMigrations, type MigrationFile } from '../tenancy/migration-files.ts'
import type { MigrationSource } from '../tenancy/migrations.ts'
import type { SchemaServer } from '../tenancy/scripts.ts'
import { TenantModules } from '../tenancy/tenant-modules.ts'
import { TenantRegistry } from '../tenancy/registry.ts'
import { Tenants } from '../tenancy/tenants.ts'
import { FairShare } from '../tenancy/fair-share.ts'
import { loginClients, TenantConnections } from '../tenancy/tenant-connections.ts'
import { repairTenantLogin, storedTenantSecret, tenantLogins, type TenantLogins } from '../tenancy/tenant-login.ts'
import { PLATFORM_SEARCH_PATH } from '../tenancy/platform-transaction.ts'
import { sharedClients, type TenantDb, type TenantPool } from '../tenancy/transaction.ts'
import { withTenantTx } from '../tenancy/with-tenant-tx.ts'
import type { Config } from './config.ts'
import { BUILTIN_MODULES_DIR, HOST_MIGRATIONS_DIR } from './paths.ts'
import { ApiKeys } from '../rbac/api-keys.ts'
import { FailureBrake } from '../rbac/failure-brake.ts'
import { Metrics } from './metrics.ts'
import { BearerIdentities } from '../rbac/identity.ts'
import { JwtVerifier } from '../rbac/jwt.ts'
import { PermissionSets } from '../rbac/permission-sets.ts'
import { Roles } from '../rbac/roles.ts'
import { HttpProblem, problems } from '../problems.ts'
import { discoverModules, type ModuleRecord } from './modules/discovery.ts'

/** 'login' on PostgreSQL unless configured otherwise; the embedded database has one login. */
function tenantConnectionMode(config: Config, db?: Database): 'login' | 'shared' {
  if (db ? db.kind === 'embedded' : !config.databaseUrl) return 'shared'
  return config.tenantConnections
}

/** How stale a cache may be on any instance: a change is honoured everywhere within this of committing. */
export const CACHE_STALENESS_BOUND_MS = 1000


export interface HostOptions {
  config: Config
  log: Logger
  /** Where the host's own SQL lives; tests point it elsewhere to exercise failures. */
  migrationsDir?: string
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
  readonly tenants: Tenants
  readonly registry: TenantRegistry
  readonly changes: ChangeFeed
  readonly tenantModules: TenantModules
  readonly keys: ApiKeys
  /** The pool as tenant transactions take it: each tenant's fair share, per-statement bounds. */
  readonly tenantPool: TenantPool
  readonly permissionSets: PermissionSets
  readonly roles: Roles
  /** Prometheus metrics; undefined with PLINTH_METRICS=0. */
  readonly metrics: Metrics | undefined
  /** Failed authentications by client address: the brake on guessing credentials. */
  readonly authFailures: FailureBrake
  /** Connections logged in as each tenant ('login' mode); undefined in 'shared' mode. */
  readonly tenantConnections: TenantConnections | undefined
  readonly logins: TenantLogins
  identities!: BearerIdentities
  /** Every module found, with its status; filled in by open(). */
  modules: ModuleRecord[] = []
  private publicFiles: MigrationFile[] = []
  private tenantFiles: MigrationFile[] = []
  lastMigration: MigrateReport | undefined

  private constructor(
    readonly config: Config,
    readonly log: Logger,
    readonly db: Database,
    private readonly options: HostOptions,
  ) {
    // A tenant this instance had not heard of yet (made a moment ago elsewhere) comes with its modules.
    this.registry = new TenantRegistry(db.pool, (tenantId) => this.refreshTenantModules(tenantId))
    this.authFailures = new FailureBrake(log, { limit: config.authFailureLimit })
    this.logins = tenantLogins(async () => config.tenantSecret ?? (await storedTenantSecret(db.pool)))
    this.tenantConnections =
      tenantConnectionMode(config, db) === 'login'
        ? new TenantConnections({
            connectionString: db.connectionString,
            max: config.dbPoolMax,
            acquireTimeoutMs: config.dbAcquireTimeoutMs,
            password: (role) => this.logins.password(role),
            repairLogin: (role) => repairTenantLogin(db.pool, this.logins, role),
            onIdleError: (err) => log.warn({ err: { message: err.message, code: (err as any).code } }, 'idle tenant connection failed'),
          })
        : undefined
    this.tenantPool = {
      pool: db.pool,
      clients: this.tenantConnections ? loginClients(this.tenantConnections, db.pool) : sharedClients(db.pool),
      share: config.dbTenantPoolMax > 0 ? new FairShare(config.dbTenantPoolMax, config.dbAcquireTimeoutMs) : null,
      statementTimeoutMs: config.dbStatementTimeoutMs,
      lockTimeoutMs: config.dbLockTimeoutMs,
      server: this.schemaServer,
    }
    this.changes = new ChangeFeed({
      connectionString: db.connectionString,
      // The embedded database delivers no NOTIFY across connections: polling alone there.
      listen: db.kind === 'postgres' ? { url: config.databaseListenUrl ?? db.connectionString, trusted: config.databaseListenUrl !== undefined } : undefined,
      pollMs: config.changePollMs,
      boundMs: CACHE_STALENESS_BOUND_MS,
      log,
    })
    this.metrics = config.metrics
      ? new Metrics({ pool: db.pool, tenantConnections: this.tenantConnections, changes: this.changes, registry: this.registry, modules: () => this.modules }, config.metricsTenants)
      : undefined
    this.tenantPool.observer = this.metrics
    this.tenantModules = new TenantModules(db.pool, this.changes)
    this.keys = new ApiKeys(db.pool, this.changes)
    this.permissionSets = new PermissionSets(db.pool, (tenantId) => this.catalog(tenantId))
    this.roles = new Roles(db.pool, () => this.catalog(), this.changes)
    this.changes.on('key', (id) => this.keys.refresh(id))
    this.changes.on('rbac', async (tenantId) => this.permissionSets.invalidate(tenantId))
    // A tenant's row and its module rows change together (created, dropped).
    this.changes.on('tenant', async (id) => {
      await Promise.all([this.registry.refresh(id), this.refreshTenantModules(id)])
    })
    this.changes.on('module', (id) => this.refreshTenantModules(id))
    this.tenants = new Tenants({
      pool: db.pool,
      tenantPool: this.tenantPool,
      logins: this.logins,
      changes: this.changes,
      reservedHosts: config.apiHosts,
      server: this.schemaServer,
      log,
      migrationsForNewTenant: () => this.migrationSources().filter((s) => s.source === 'host' || this.isDefaultModule(s.source)),
    })
  }

  /** Re-reads a tenant's modules; they decide what its grants give, so its permission sets go too. */
  private async refreshTenantModules(tenantId: string) {
    await this.tenantModules.refresh(tenantId)
    this.permissionSets.invalidate(tenantId)
  }

  /** Opens the database, applies what is pending, and loads the caches. */
  static async open(options: HostOptions): Promise<Host> {
    const { config, log } = options
    const db = await openDatabase({
      databaseUrl: config.databaseUrl,
      dataDir: config.dataDir,
      // In 'login' mode tenant work has connections of its own (TenantConnections); the pool is the platform's.
      poolMax: tenantConnectionMode(config) === 'login' ? config.dbPlatformPoolMax : config.dbPoolMax,
      acquireTimeoutMs: config.dbAcquireTimeoutMs,
      log,
    })
    const host = new Host(config, log, db, options)
    try {
      // A folder named twice (src/plugins in PLINTH_MODULE_DIRS too) is read once, not refused as duplicates.
      host.modules = await discoverModules([...new Set([BUILTIN_MODULES_DIR, ...config.moduleDirs])], config.modules)
      if (options.migrate !== false || (await host.isNewDatabase())) await host.migrate()
      else await host.readMigrationFiles(true)
      await host.registry.load()
      await host.tenantModules.load()
      await host.keys.load()
      host.identities = new BearerIdentities(host.keys, await JwtVerifier.create(config.jwt), host.registry, host.permissionSets, config.adminToken, host.authFailures)
      if (options.followChanges !== false) await host.changes.start()
    } catch (err) {
      await db.close().catch(() => {})
      throw err
    }
    log.info({ database: db.kind, location: db.location, tenants: host.registry.size, ...(db.citus ? { citus: db.citus } : {}) }, 'database ready')
    return host
  }

  get pool() {
    return this.db.pool
  }

  /** The host's tenant migrations (every tenant), then each loadable module's (tenants that enabled it). */
  migrationSources(): MigrationSource[] {
    return [
      { source: 'host', files: this.tenantFiles },
      ...this.modules.filter((m) => m.status === 'loaded').map((m) => ({ source: m.id, files: m.migrations, baseline: m.baseline })),
    ]
  }

  /**
   * The permissions loaded modules declare: what a grant can give. For a tenant, only those of the
   * modules enabled there.
   */
  catalog(tenantId?: string): string[] {
    const enabled = tenantId === undefined ? undefined : new Set(this.tenantModules.enabledFor(tenantId))
    return this.modules
      .filter((m) => m.status === 'loaded' && (!enabled || enabled.has(m.id)))
      .flatMap((m) => m.manifest!.permissions)
  }

  private isDefaultModule(id: string) {
    const defaults = this.config.defaultModules
    return defaults === '*' || defaults.includes(id)
  }

  /** A module's migrations succeeding or failing for a tenant decides whether its routes serve there. */
  private recordModuleResult = async (result: TenantMigrationResult & { tenantId: string }) => {
    if (result.source === 'host') return
    await this.tenantModules.setStatus(result.tenantId, result.source, result.status === 'ok' ? 'ready' : 'failed', result.error ?? null)
  }

  /** Where tenant schemas are made: one PostgreSQL, or the workers behind a Citus coordinator. */
  get schemaServer(): SchemaServer {
    return this.db.citus ? 'citus' : 'postgres'
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
    await this.tenantModules.setEnabled(tenant.id, moduleId, true)
    const [result] = await migrateTenants(this.pool, {
      sources: [{ source: moduleId, files: record.migrations, baseline: record.baseline }],
      concurrency: 1,
      server: this.schemaServer,
      tenantPool: this.tenantPool,
      tenantId: tenant.id,
      onSuccess: this.recordModuleResult,
      onFailure: this.recordModuleResult,
    })
    if (!result) await this.tenantModules.setStatus(tenant.id, moduleId, 'ready', null)
    return result ?? { tenant: tenant.code, source: moduleId, status: 'ok', applied: [] }
  }

  /** Issues an API key for a tenant, holding `roles` there; the key's secret is in the result, once. */
  async createKey(tenantCode: string, name: string, roles: string[] = []) {
    const tenant = await this.tenants.get(tenantCode)
    const created = await this.keys.create(tenant.id, name, async (client, keyId) => {
      if (roles.length === 0) return
      await client.query(PLATFORM_SEARCH_PATH)
      for (const role of roles) await this.roles.assignWith(client, quoteIdent(tenant.schema), role, `key:${keyId}`)
      await recordChange(client, 'rbac', tenant.id)
    })
    if (roles.length > 0) await this.changes.announce('rbac', tenant.id)
    return created
  }

  /** Disables a module for a tenant: its routes answer 404 there; its tables and data stay. */
  async disableModule(tenantCode: string, moduleId: string) {
    const tenant = await this.tenants.get(tenantCode)
    if (!this.tenantModules.state(tenant.id, moduleId) && !this.modules.some((m) => m.id === moduleId)) {
      throw new HttpProblem(404, 'MODULE_NOT_FOUND', `No module has the id ${JSON.stringify(moduleId)}.`)
    }
    await this.tenantModules.setEnabled(tenant.id, moduleId, false)
  }

  /** No public migration was ever applied here. */
  private async isNewDatabase() {
    await this.readMigrationFiles()
    return (await pendingPublicMigrations(this.pool, this.publicFiles)).length === this.publicFiles.length
  }

  /** The host's own migration files; `refusePending`: and none of the public ones may be unapplied. */
  private async readMigrationFiles(refusePending = false) {
    const dir = this.options.migrationsDir ?? HOST_MIGRATIONS_DIR
    this.publicFiles = await readMigrations(path.join(dir, 'public'))
    this.tenantFiles = await readMigrations(path.join(dir, 'tenant'))
    if (!refusePending) return
    const pending = await pendingPublicMigrations(this.pool, this.publicFiles)
    if (pending.length > 0) throw new PendingMigrationsError(pending)
  }

  async migrate(): Promise<MigrateReport> {
    await this.readMigrationFiles()
    const report = await migrateAll(this.pool, {
      publicFiles: this.publicFiles,
      sources: this.migrationSources(),
      concurrency: this.migrationConcurrency,
      server: this.schemaServer,
      tenantPool: this.tenantPool,
      onSuccess: this.recordModuleResult,
      onFailure: this.recordModuleResult,
    })
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
  private async recoverFailedModules(report: MigrateReport): Promise<TenantMigrationResult[]> {
    const { rows } = await this.pool.query<{ tenantId: string; code: string; moduleId: string; error: string | null }>(
      `SELECT p.tenant_id AS "tenantId", t.code, p.module_id AS "moduleId", p.error
         FROM public.sys_tenant_module p JOIN public.sys_tenant t ON t.id = p.tenant_id
        WHERE p.enabled AND p.status = 'failed'`,
    )
    const recovered: TenantMigrationResult[] = []
    for (const row of rows) {
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
    this.authFailures.stop()
    await this.changes.stop()
    await this.tenantConnections?.end()
    await this.db.close()
  }
}
