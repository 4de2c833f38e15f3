// The services one plinth process holds, with or without an HTTP server: the database, its
// bootstrap, the tenant registry and the change feed that keeps it fresh. The HTTP app (app.ts)
// and the CLI both open a Host; only the app listens.
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Logger } from 'pino'
import { ChangeFeed } from '../tenancy/changes.ts'
import { openDatabase, type Database } from '../tenancy/database.ts'
import { migrateAll, type MigrateReport } from '../tenancy/migrate.ts'
import { readMigrations, type MigrationFile, type MigrationSource } from '../tenancy/migrations.ts'
import { TenantRegistry } from '../tenancy/registry.ts'
import { Tenants } from '../tenancy/tenants.ts'
import { runInTenantTransaction, type TenantDb } from '../tenancy/transaction.ts'
import type { Config } from './config.ts'
import { problems } from './errors.ts'

export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')

export interface HostOptions {
  config: Config
  log: Logger
  /** Where the host's own SQL lives; tests point it elsewhere to exercise failures. */
  migrationsDir?: string
  /** Keep caches fresh from other processes' changes; the CLI, which lives for one command, does not. */
  followChanges?: boolean
}

export class Host {
  readonly tenants: Tenants
  readonly registry: TenantRegistry
  readonly changes: ChangeFeed
  private publicFiles: MigrationFile[] = []
  private tenantFiles: MigrationFile[] = []
  lastMigration: MigrateReport | undefined

  private constructor(
    readonly config: Config,
    readonly log: Logger,
    readonly db: Database,
    private readonly options: HostOptions,
  ) {
    this.registry = new TenantRegistry(db.pool)
    this.changes = new ChangeFeed(db.pool, {
      mode: db.kind === 'postgres' ? 'notify' : 'poll',
      connectionString: db.connectionString,
      log,
    })
    this.changes.on('tenant', (id) => this.registry.refresh(id))
    this.tenants = new Tenants({ pool: db.pool, changes: this.changes, migrationsForNewTenant: () => this.migrationSources() })
  }

  /** Opens the database, applies what is pending, and loads the caches. */
  static async open(options: HostOptions): Promise<Host> {
    const { config, log } = options
    const db = await openDatabase({
      databaseUrl: config.databaseUrl,
      dataDir: config.dataDir,
      poolMax: config.dbPoolMax,
      acquireTimeoutMs: config.dbAcquireTimeoutMs,
      log,
    })
    const host = new Host(config, log, db, options)
    try {
      await host.migrate()
      await host.registry.load()
      if (options.followChanges !== false) await host.changes.start()
    } catch (err) {
      await db.close().catch(() => {})
      throw err
    }
    log.info({ database: db.kind, location: db.location, tenants: host.registry.size }, 'database ready')
    return host
  }

  get pool() {
    return this.db.pool
  }

  /** The tenant migrations every tenant gets, the host's own first. */
  migrationSources(): MigrationSource[] {
    return [{ source: 'host', files: this.tenantFiles }]
  }

  async migrate(): Promise<MigrateReport> {
    const dir = this.options.migrationsDir ?? path.join(PROJECT_ROOT, 'migrations')
    this.publicFiles = await readMigrations(path.join(dir, 'public'))
    this.tenantFiles = await readMigrations(path.join(dir, 'tenant'))
    const report = await migrateAll(this.pool, {
      publicFiles: this.publicFiles,
      sources: this.migrationSources(),
      concurrency: this.db.kind === 'embedded' ? 1 : Math.max(1, Math.min(8, this.config.dbPoolMax - 1)),
    })
    for (const result of report.tenants.filter((r) => r.status !== 'ok')) {
      this.log.error({ tenant: result.tenant, source: result.source, status: result.status, reason: result.error }, 'tenant migration did not complete')
    }
    if (report.publicApplied.length > 0) this.log.info({ applied: report.publicApplied }, 'applied public migrations')
    this.lastMigration = report
    return report
  }

  /** The contract's withTenantTx: `work(db)` in a transaction on the tenant's schema, for code outside a request. */
  async withTenantTx<T>(tenantId: string, work: (db: TenantDb) => Promise<T>): Promise<T> {
    let tenant = this.registry.get(tenantId)
    if (!tenant) {
      // Perhaps created on another instance a moment ago, before its change reached us.
      await this.registry.refresh(tenantId)
      tenant = this.registry.get(tenantId)
    }
    if (!tenant) throw problems.tenantNotFound()
    return runInTenantTransaction(this.pool, tenant.schema, work)
  }

  async close() {
    await this.changes.stop()
    await this.db.close()
  }
}
