// The composition root: every service of a plinth process, built here and nowhere else, in
// dependency order, each given what it needs in its constructor. Nothing is loaded or migrated
// here (Host.open does that, in its order); no service reaches back into a container for another.
// Each process asks for what it uses: the server for every service; the CLI's commands that
// write for all but those that serve requests (identities, the brake, metrics), and without the
// modules' code when they touch no module; the CLI's read-only commands open the database alone
// (cli/reads.ts).
import type pg from 'pg'
import type { Logger } from 'pino'
import { ApiKeys } from '../access/api-keys.ts'
import { ConsoleSessions } from '../access/console-sessions.ts'
import { FailureBrake, type OperatorFailures } from '../access/failure-brake.ts'
import { appendAuditAlone } from '../platform/audit/append.ts'
import { AuditCheckpoints } from '../platform/audit/checkpoint.ts'
import { BearerIdentities } from '../access/identity.ts'
import { JwtVerifier } from '../access/jwt.ts'
import { PermissionSets } from '../access/permission-sets.ts'
import { Roles } from '../access/roles.ts'
import { ChangeFeed } from '../platform/db/changes.ts'
import { openDatabase, type Database } from '../platform/db/database.ts'
import { JobDefinitions } from '../jobs/definitions.ts'
import { JobRunner } from '../jobs/runner.ts'
import { FairShare } from '../tenancy/fair-share.ts'
import { PendingMigrationsError, pendingPublicMigrations, readMigrations, type MigrationFile } from '../tenancy/migration-files.ts'
import type { MigrationSource } from '../tenancy/migrations.ts'
import { TenantRegistry } from '../tenancy/registry.ts'
import type { SchemaServer } from '../platform/db/scripts.ts'
import { loginClients, TenantConnections } from '../tenancy/tenant-connections.ts'
import { repairTenantLogin, storedTenantSecret, tenantLogins, type TenantLogins } from '../tenancy/tenant-login.ts'
import { TenantModules } from '../tenancy/tenant-modules.ts'
import { Tenants } from '../tenancy/tenants.ts'
import { sharedClients, type TenantPool } from '../tenancy/transaction.ts'
import type { Config } from './config.ts'
import type { Metrics } from './metrics.ts'
import type { ModuleRecord } from '../modules/discovery.ts'
import { BUILTIN_MODULES_DIR, HOST_MIGRATIONS_DIR } from './paths.ts'
import path from 'node:path'

/** How stale a cache may be on any instance: a change is honoured everywhere within this of committing. */
export const CACHE_STALENESS_BOUND_MS = 1000

export interface ServiceOptions {
  config: Config
  log: Logger
  /** Where the host's own SQL lives; tests point it elsewhere to exercise failures. */
  migrationsDir?: string
  /**
   * Find and import the modules (default). false: no module's code is imported and none is known:
   * for the CLI's commands that touch no module (keys, roles, a tenant's status).
   */
  modules?: boolean
  /**
   * Refuse (PendingMigrationsError) a database with a public migration pending, before any module
   * code is imported; a database with none applied yet is let through, to be set up.
   */
  refusePending?: boolean
  /**
   * Build what serving requests needs (default): identities, the brake on failed
   * authentications, metrics. false: none of them, as for the CLI, which serves no request.
   */
  requests?: boolean
}

/** What only a process that serves requests uses. */
export interface RequestServices {
  identities: BearerIdentities
  /** Failed authentications by client address: the brake on guessing credentials. */
  authFailures: FailureBrake
  /** Prometheus metrics; undefined with PLINTH_METRICS=0. */
  metrics: Metrics | undefined
  /** The audit chain's head in the log (platform/audit/checkpoint.ts). */
  auditCheckpoints: AuditCheckpoints
}

/** The host's own migration files: public/ once per database, tenant/ in every tenant; read again by each migrate. */
export interface HostMigrationFiles {
  dir: string
  public: MigrationFile[]
  tenant: MigrationFile[]
}

export async function readHostMigrationFiles(dir: string): Promise<HostMigrationFiles> {
  return { dir, public: await readMigrations(path.join(dir, 'public')), tenant: await readMigrations(path.join(dir, 'tenant')) }
}

export interface Services {
  config: Config
  log: Logger
  db: Database
  /** Where tenant schemas are made: one PostgreSQL, or the workers behind a Citus coordinator. */
  server: SchemaServer
  hostFiles: HostMigrationFiles
  /** Every module found, with its status (its register(ctx) runs when the app is built). */
  modules: ModuleRecord[]
  logins: TenantLogins
  /** Connections logged in as each tenant ('login' mode); undefined in 'shared' mode. */
  tenantConnections: TenantConnections | undefined
  changes: ChangeFeed
  tenantModules: TenantModules
  permissionSets: PermissionSets
  roles: Roles
  registry: TenantRegistry
  /** The connections tenant transactions take: each tenant's fair share, per-statement bounds. */
  tenantPool: TenantPool
  tenants: Tenants
  keys: ApiKeys
  /** The console's sign-ins (public.console_session). */
  consoleSessions: ConsoleSessions
  /** The modules' jobs and schedules, as they register (ctx.jobs). */
  jobDefinitions: JobDefinitions
  /** Runs them: started by the server (PLINTH_JOBS) and `plinth worker`; tests run it to idle. */
  jobs: JobRunner
  /** Undefined when opened without them (`requests: false`). */
  requests: RequestServices | undefined
  /** The migrations of the host and of each loaded module, in the order they apply. */
  migrationSources(): MigrationSource[]
}

/** 'login' on PostgreSQL unless configured otherwise; the embedded database has one login. */
function tenantConnectionMode(config: Config, db?: Database): 'login' | 'shared' {
  if (db ? db.kind === 'embedded' : !config.databaseUrl) return 'shared'
  return config.tenantConnections
}

/** How tenant transactions share the pool (fair-share.ts); null when DB_TENANT_POOL_MAX=0 turns sharing off. */
function fairShare(config: Config): FairShare | null {
  if (config.dbTenantPoolMax === 0) return null
  return new FairShare({ capacity: config.dbPoolMax, perTenant: config.dbTenantPoolMax, reserve: config.dbPoolReserve, waitMs: config.dbAcquireTimeoutMs })
}

/** Connections tenant work may hold at once: the pool and the share's reserve, or the pool alone. */
function tenantWorkConnections(config: Config, share: FairShare | null): number {
  return share?.connections ?? config.dbPoolMax
}

/** Opens the database and builds every service on it; closes the database again if any step fails. */
export async function openServices({ config, log, migrationsDir = HOST_MIGRATIONS_DIR, modules = true, refusePending = false, requests = true }: ServiceOptions): Promise<Services> {
  const share = fairShare(config)
  const db = await openDatabase({
    databaseUrl: config.databaseUrl,
    dataDir: config.dataDir,
    // In 'login' mode tenant work has connections of its own (TenantConnections); the pool is the platform's.
    poolMax: tenantConnectionMode(config) === 'login' ? config.dbPlatformPoolMax : tenantWorkConnections(config, share),
    acquireTimeoutMs: config.dbAcquireTimeoutMs,
    log,
  })
  try {
    const hostFiles = await readHostMigrationFiles(migrationsDir)
    if (refusePending) {
      const pending = await pendingPublicMigrations(db.pool, hostFiles.public)
      if (pending.length > 0 && pending.length < hostFiles.public.length) throw new PendingMigrationsError(pending)
    }
    return await buildServices(config, log, db, hostFiles, share, { modules, requests })
  } catch (err) {
    await db.close().catch(() => {})
    throw err
  }
}

async function buildServices(
  config: Config,
  log: Logger,
  db: Database,
  hostFiles: HostMigrationFiles,
  share: FairShare | null,
  wanted: { modules: boolean; requests: boolean },
): Promise<Services> {
  const pool = db.pool
  const server: SchemaServer = db.citus ? 'citus' : 'postgres'
  // A folder named twice (src/plugins in PLINTH_MODULE_DIRS too) is read once, not refused as duplicates.
  // What only some openings use is imported by those that do: a CLI command that needs no module
  // or serves no request loads neither the modules' machinery nor the metrics' (docs/benchmarks.md).
  const modules = wanted.modules ? await (await import('../modules/discovery.ts')).discoverModules([...new Set([BUILTIN_MODULES_DIR, ...config.moduleDirs])], config.modules) : []
  const loaded = () => modules.filter((m) => m.status === 'loaded')
  const migrationSources = (): MigrationSource[] => [
    { source: 'host', files: hostFiles.tenant },
    ...loaded().map((m) => ({ source: m.id, files: m.migrations, baseline: m.baseline })),
  ]

  const logins = tenantLogins(async () => config.tenantSecret ?? (await storedTenantSecret(pool)))
  const tenantConnections =
    tenantConnectionMode(config, db) === 'login'
      ? new TenantConnections({
          connectionString: db.connectionString,
          // The pool and the reserve: FairShare decides who takes them.
          max: tenantWorkConnections(config, share),
          acquireTimeoutMs: config.dbAcquireTimeoutMs,
          password: (role) => logins.password(role),
          repairLogin: (role) => repairTenantLogin(pool, logins, role),
          onIdleError: (err) => log.warn({ err: { message: err.message, code: (err as any).code } }, 'idle tenant connection failed'),
        })
      : undefined
  const changes = new ChangeFeed({
    connectionString: db.connectionString,
    // The embedded database delivers no NOTIFY across connections: polling alone there.
    listen: db.kind === 'postgres' ? { url: config.databaseListenUrl ?? db.connectionString, trusted: config.databaseListenUrl !== undefined } : undefined,
    pollMs: config.changePollMs,
    boundMs: CACHE_STALENESS_BOUND_MS,
    log,
  })
  const tenantModules = new TenantModules(pool, changes)
  // What a grant can give: the permissions the loaded modules declare; for a tenant, those of the
  // modules enabled there.
  const catalog = (tenantId?: string) => {
    const enabled = tenantId === undefined ? undefined : new Set(tenantModules.enabledFor(tenantId))
    return loaded()
      .filter((m) => !enabled || enabled.has(m.id))
      .flatMap((m) => m.manifest!.permissions)
  }
  const permissionSets = new PermissionSets(pool, catalog)
  const roles = new Roles(pool, () => catalog(), changes)
  // A tenant's modules decide what its grants give: its permission sets go with them.
  const refreshTenantModules = async (tenantId: string) => {
    await tenantModules.refresh(tenantId)
    permissionSets.invalidate(tenantId)
  }
  // A tenant this instance had not heard of yet (made a moment ago elsewhere) comes with its modules.
  const registry = new TenantRegistry(pool, refreshTenantModules)
  const metrics = wanted.requests && config.metrics ? new (await import('./metrics.ts')).Metrics({ pool, tenantConnections, changes, registry, modules: () => modules }, config.metricsTenants) : undefined
  const tenantPool: TenantPool = {
    pool,
    clients: tenantConnections ? loginClients(tenantConnections, pool) : sharedClients(pool),
    share,
    statementTimeoutMs: config.dbStatementTimeoutMs,
    lockTimeoutMs: config.dbLockTimeoutMs,
    server,
    observer: metrics?.transactions,
  }
  const defaults = config.defaultModules
  const tenants = new Tenants({
    pool,
    tenantPool,
    logins,
    changes,
    reservedHosts: config.apiHosts,
    server,
    log,
    migrationsForNewTenant: () => migrationSources().filter((s) => s.source === 'host' || defaults === '*' || defaults.includes(s.source)),
  })
  const keys = new ApiKeys(pool, changes)
  const consoleSessions = new ConsoleSessions(pool, config.consoleIdleMinutes * 60_000)
  const jobDefinitions = new JobDefinitions()
  const jobs = new JobRunner({
    connectionString: db.connectionString,
    platformPool: pool,
    tenantPool,
    registry,
    tenantModules,
    definitions: jobDefinitions,
    log,
    concurrency: config.jobsConcurrency,
    pollMs: config.jobsPollMs,
    lockTimeoutMs: config.jobsLockTimeoutMs,
    observer: metrics?.jobs,
  })
  let requests: RequestServices | undefined
  if (wanted.requests) {
    const authFailures = new FailureBrake(log, { limit: config.authFailureLimit, onOperatorFailures: (summary) => auditOperatorFailures(pool, summary) })
    const identities = new BearerIdentities(keys, await JwtVerifier.create(config.jwt), registry, permissionSets, config.adminToken, authFailures)
    requests = { identities, authFailures, metrics, auditCheckpoints: new AuditCheckpoints(pool, log, config.auditCheckpointMs) }
  }

  changes.on('key', (id) => keys.refresh(id))
  changes.on('rbac', async (tenantId) => permissionSets.invalidate(tenantId))
  // A tenant's row and its module rows change together (created, dropped).
  changes.on('tenant', async (id) => {
    await Promise.all([registry.refresh(id), refreshTenantModules(id)])
  })
  changes.on('module', refreshTenantModules)

  return {
    config, log, db, server, hostFiles, modules, logins, tenantConnections, changes, tenantModules, permissionSets,
    roles, registry, tenantPool, tenants, keys, consoleSessions, jobDefinitions, jobs, requests, migrationSources,
  }
}

/** One audit row per address and brake window with failed operator authentications: who tried, how often. */
function auditOperatorFailures(pool: pg.Pool, { address, failures, refused, windowMs }: OperatorFailures) {
  return appendAuditAlone(pool, { action: 'auth.failed', outcome: 'failure', changes: { failures, refused, windowMs } }, { kind: 'anonymous', id: null, clientAddress: address })
}
