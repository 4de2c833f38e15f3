// Every setting plinth reads from the environment, validated once at start.
// A bad value is a ConfigError naming the variable; secrets are never echoed back.
import path from 'node:path'
import type { JwtConfig } from '../access/jwt.ts'
import { MODULE_ID } from '../contract/contract.ts'

export interface Config {
  /** Unset: the embedded database (PGlite) under dataDir. */
  databaseUrl: string | undefined
  /** A direct connection (not through PgBouncer in transaction mode) for the change feed's LISTEN. */
  databaseListenUrl: string | undefined
  /** How often the change feed reads public.sys_change, whether or not LISTEN wakes it. */
  changePollMs: number
  /** How often a serving host logs the audit chain's head, when it moved (PLINTH_AUDIT_CHECKPOINT_MS). */
  auditCheckpointMs: number
  /** A console session ends after this long without a request (PLINTH_CONSOLE_IDLE_MINUTES). */
  consoleIdleMinutes: number
  port: number
  host: string
  logLevel: string
  logPretty: boolean
  /** PLINTH_OTEL=1: traces through OpenTelemetry, configured by the standard OTEL_* variables (platform/otel/setup.ts). */
  otel: boolean
  dataDir: string
  adminToken: string | undefined
  /** `true` reflects any origin; an empty list allows no cross-origin call. */
  corsOrigins: string[] | true
  /** Connections for tenant work (requests, withTenantTx): over all tenants, at once. */
  dbPoolMax: number
  /** Connections of the platform's own role (keys, tenants, the change feed, migrations' ledgers). */
  dbPlatformPoolMax: number
  /**
   * 'login': tenant work runs on connections that logged in as the tenant's role (the boundary;
   * the default on PostgreSQL). 'shared': on the platform's connections under SET LOCAL ROLE,
   * where an injected query can cross tenants (docs/security.md); the embedded database's only mode.
   */
  tenantConnections: 'login' | 'shared'
  /** What tenant passwords are derived from; unset: a secret kept in public.sys_setting. */
  tenantSecret: string | undefined
  dbAcquireTimeoutMs: number
  /** How many pooled clients one tenant may hold at once: the rest stay for the others. */
  dbTenantPoolMax: number
  /** Connections past DB_POOL_MAX for tenants within their share while another borrows (tenancy/fair-share.ts). */
  dbPoolReserve: number
  /** Per request and withTenantTx transaction (SET LOCAL); 0 for none. */
  dbStatementTimeoutMs: number
  dbLockTimeoutMs: number
  /** Prometheus metrics: collected unless off; served on metricsPort, else at /metrics behind a token. */
  metrics: boolean
  metricsPort: number | undefined
  metricsToken: string | undefined
  metricsTenants: 'none' | '*' | string[]
  /** Host names the API serves every tenant on; no tenant's domain may be one of them. */
  apiHosts: string[]
  /** Failed authentications a client address may make in 10 s before it is answered 429. */
  authFailureLimit: number
  shutdownTimeoutMs: number
  bodyLimitBytes: number
  /** Folders holding module folders, besides src/plugins. */
  moduleDirs: string[]
  /** Which discovered modules to load: all, or these ids. */
  modules: '*' | string[]
  /** Which loaded modules a new tenant gets: all, or these ids. */
  defaultModules: '*' | string[]
  strictModules: boolean
  moduleRegisterTimeoutMs: number
  jwt: JwtConfig
  /** Run modules' jobs in this process (PLINTH_JOBS; `plinth worker` runs them alone). */
  jobs: boolean
  /** Jobs one process runs at once (PLINTH_JOBS_CONCURRENCY). */
  jobsConcurrency: number
  /** How often an idle worker looks for due jobs (PLINTH_JOBS_POLL_MS); NOTIFY wakes it sooner where it arrives. */
  jobsPollMs: number
  /** A worker not heard from for this long has its jobs taken back and run again (PLINTH_JOBS_LOCK_TIMEOUT_MS). */
  jobsLockTimeoutMs: number
  /** One line for each old variable name the environment used (DEPRECATED_NAMES): the host logs them, the CLI prints them. */
  deprecations: string[]
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`)
    this.name = 'ConfigError'
  }
}

type Env = Record<string, string | undefined>

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']

/** The variables and their defaults, as .env.example lists them. */
export const DEFAULTS = {
  PORT: '3000',
  HOST: '127.0.0.1',
  LOG_LEVEL: 'info',
  LOG_PRETTY: '0',
  PLINTH_OTEL: '0',
  PLINTH_DATA_DIR: '.plinth/data',
  CORS_ORIGINS: '',
  DB_POOL_MAX: '10',
  DB_PLATFORM_POOL_MAX: '5',
  PLINTH_TENANT_CONNECTIONS: '',
  PLINTH_TENANT_SECRET: '',
  DB_ACQUIRE_TIMEOUT_MS: '5000',
  PLINTH_CHANGE_POLL_MS: '250',
  PLINTH_AUDIT_CHECKPOINT_MS: '60000',
  PLINTH_CONSOLE_IDLE_MINUTES: '30',
  DB_TENANT_POOL_MAX: '',
  DB_POOL_RESERVE: '',
  DB_STATEMENT_TIMEOUT_MS: '30000',
  DB_LOCK_TIMEOUT_MS: '5000',
  PLINTH_AUTH_FAILURE_LIMIT: '20',
  PLINTH_API_HOSTS: 'localhost',
  PLINTH_METRICS: '1',
  METRICS_PORT: '',
  PLINTH_METRICS_TOKEN: '',
  PLINTH_METRICS_TENANTS: '',
  PLINTH_SHUTDOWN_TIMEOUT_MS: '10000',
  PLINTH_BODY_LIMIT_BYTES: '1048576',
  PLINTH_MODULE_DIRS: '',
  PLINTH_MODULES: '*',
  PLINTH_DEFAULT_MODULES: '*',
  PLINTH_STRICT_MODULES: '0',
  PLINTH_MODULE_REGISTER_TIMEOUT_MS: '5000',
  PLINTH_JWT_SECRET: '',
  PLINTH_JWT_PUBLIC_KEY_FILE: '',
  PLINTH_JWT_JWKS_FILE: '',
  PLINTH_JWT_ISSUER: '',
  PLINTH_JWT_AUDIENCE: '',
  PLINTH_JOBS: '1',
  PLINTH_JOBS_CONCURRENCY: '2',
  PLINTH_JOBS_POLL_MS: '1000',
  PLINTH_JOBS_LOCK_TIMEOUT_MS: '30000',
} as const

function metricsTenants(raw: string): Config['metricsTenants'] {
  const value = raw.trim()
  if (value === '' || value === 'none') return 'none'
  if (value === '*') return '*'
  return value.split(',').map((code) => code.trim()).filter(Boolean)
}

/**
 * Names the modules' variables had when the code said "plugin" for a module. Each still works;
 * setting one prints a one-line notice, and setting it beside its new name to another value is an error.
 */
export const DEPRECATED_NAMES = {
  PLINTH_PLUGIN_DIRS: 'PLINTH_MODULE_DIRS',
  PLINTH_PLUGINS: 'PLINTH_MODULES',
  PLINTH_DEFAULT_PLUGINS: 'PLINTH_DEFAULT_MODULES',
  PLINTH_STRICT_PLUGINS: 'PLINTH_STRICT_MODULES',
  PLINTH_PLUGIN_REGISTER_TIMEOUT_MS: 'PLINTH_MODULE_REGISTER_TIMEOUT_MS',
} as const satisfies Record<string, keyof typeof DEFAULTS>

/** An environment variable under its current name, or under its deprecated one. */
export function envValue(env: Env, name: keyof typeof DEFAULTS): string | undefined {
  const value = env[name]
  if (value !== undefined && value !== '') return value
  const old = (Object.keys(DEPRECATED_NAMES) as (keyof typeof DEPRECATED_NAMES)[]).find((o) => DEPRECATED_NAMES[o] === name)
  return old === undefined ? value : env[old]
}

/** PLINTH_MODULE_DIRS as folders: comma-separated, resolved against the working folder. */
export function moduleDirsFrom(value: string | undefined): string[] {
  return (value ?? '').split(',').map((d) => d.trim()).filter(Boolean).map((d) => path.resolve(d))
}

export function loadConfig(env: Env = process.env): Config {
  const problems: string[] = []
  const deprecations: string[] = []
  for (const [old, name] of Object.entries(DEPRECATED_NAMES)) {
    if (env[old] === undefined || env[old] === '') continue
    if (env[name] !== undefined && env[name] !== '' && env[name] !== env[old]) problems.push(`${old} and ${name} are the same setting and differ: set ${name} only`)
    else deprecations.push(`${old} is deprecated: name it ${name}`)
  }
  const read = (name: keyof typeof DEFAULTS) => {
    const value = envValue(env, name)
    return value === undefined || value === '' ? DEFAULTS[name] : value
  }
  const integer = (name: keyof typeof DEFAULTS, min: number, max: number) => {
    const raw = read(name)
    const value = Number(raw)
    if (!/^\d+$/.test(raw) || value < min || value > max) {
      problems.push(`${name} must be a whole number from ${min} to ${max} (got "${raw}")`)
      return Number(DEFAULTS[name])
    }
    return value
  }
  const flag = (name: keyof typeof DEFAULTS) => {
    const raw = read(name)
    if (!['0', '1', 'true', 'false'].includes(raw)) {
      problems.push(`${name} must be 0, 1, true or false (got "${raw}")`)
    }
    return raw === '1' || raw === 'true'
  }

  const postgresUrl = (name: 'DATABASE_URL' | 'DATABASE_LISTEN_URL') => {
    const value = env[name] || undefined
    if (value === undefined) return undefined
    // The URL holds a password: say what is wrong with it, never what it is.
    let ok = false
    try {
      const url = new URL(value)
      ok = url.protocol === 'postgres:' || url.protocol === 'postgresql:'
    } catch {}
    if (!ok) problems.push(`${name} must be a postgres:// or postgresql:// URL`)
    return value
  }
  const databaseUrl = postgresUrl('DATABASE_URL')
  const databaseListenUrl = postgresUrl('DATABASE_LISTEN_URL')
  if (databaseListenUrl && !databaseUrl) problems.push('DATABASE_LISTEN_URL goes with DATABASE_URL (the embedded database needs neither)')

  const logLevel = read('LOG_LEVEL')
  if (!LOG_LEVELS.includes(logLevel)) {
    problems.push(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')} (got "${logLevel}")`)
  }

  const adminToken = env.PLINTH_ADMIN_TOKEN || undefined
  if (adminToken !== undefined && adminToken.length < 24) {
    problems.push('PLINTH_ADMIN_TOKEN must be at least 24 characters long')
  }

  const corsRaw = read('CORS_ORIGINS').trim()
  let corsOrigins: string[] | true = []
  if (corsRaw === '*') corsOrigins = true
  else if (corsRaw !== '') {
    corsOrigins = corsRaw.split(',').map((o) => o.trim()).filter(Boolean)
    for (const origin of corsOrigins) {
      let valid = false
      try {
        valid = new URL(origin).origin === origin
      } catch {}
      if (!valid) problems.push(`CORS_ORIGINS must list origins like https://app.example.com, or be * (got "${origin}")`)
    }
  }

  const moduleList = (name: keyof typeof DEFAULTS): '*' | string[] => {
    const raw = read(name).trim()
    if (raw === '*') return '*'
    if (raw === 'none') return []
    const ids = raw.split(',').map((id) => id.trim()).filter(Boolean)
    for (const id of ids) {
      if (!new RegExp(MODULE_ID).test(id)) problems.push(`${name} must be * or a comma-separated list of module ids (got "${id}")`)
    }
    return ids
  }

  const optional = (name: keyof typeof DEFAULTS) => read(name) || undefined
  const jwt = {
    secret: optional('PLINTH_JWT_SECRET'),
    publicKeyFile: optional('PLINTH_JWT_PUBLIC_KEY_FILE'),
    jwksFile: optional('PLINTH_JWT_JWKS_FILE'),
    issuer: optional('PLINTH_JWT_ISSUER'),
    audience: optional('PLINTH_JWT_AUDIENCE'),
  }
  if (jwt.secret !== undefined && jwt.secret.length < 32) problems.push('PLINTH_JWT_SECRET must be at least 32 characters long')
  if ([jwt.secret, jwt.publicKeyFile, jwt.jwksFile].filter(Boolean).length > 1) {
    problems.push('PLINTH_JWT_SECRET, PLINTH_JWT_PUBLIC_KEY_FILE and PLINTH_JWT_JWKS_FILE are exclusive: set one')
  }

  const host = read('HOST')
  const config: Config = {
    databaseUrl,
    databaseListenUrl,
    // Four reads a second keep every cache within the 1 s bound (README, "Several instances").
    changePollMs: integer('PLINTH_CHANGE_POLL_MS', 10, 900),
    auditCheckpointMs: integer('PLINTH_AUDIT_CHECKPOINT_MS', 100, 86_400_000),
    consoleIdleMinutes: integer('PLINTH_CONSOLE_IDLE_MINUTES', 1, 1440),
    port: integer('PORT', 0, 65535),
    host,
    logLevel,
    logPretty: flag('LOG_PRETTY'),
    otel: flag('PLINTH_OTEL'),
    dataDir: path.resolve(read('PLINTH_DATA_DIR')),
    adminToken,
    corsOrigins,
    dbPoolMax: integer('DB_POOL_MAX', 1, 1000),
    dbPlatformPoolMax: integer('DB_PLATFORM_POOL_MAX', 2, 1000),
    tenantConnections: 'login',
    tenantSecret: optional('PLINTH_TENANT_SECRET'),
    dbAcquireTimeoutMs: integer('DB_ACQUIRE_TIMEOUT_MS', 1, 600_000),
    dbTenantPoolMax: 0,
    dbPoolReserve: 0,
    dbStatementTimeoutMs: integer('DB_STATEMENT_TIMEOUT_MS', 0, 86_400_000),
    dbLockTimeoutMs: integer('DB_LOCK_TIMEOUT_MS', 0, 86_400_000),
    authFailureLimit: integer('PLINTH_AUTH_FAILURE_LIMIT', 0, 1_000_000),
    metrics: flag('PLINTH_METRICS'),
    metricsPort: read('METRICS_PORT') === '' ? undefined : integer('METRICS_PORT', 0, 65535),
    metricsToken: optional('PLINTH_METRICS_TOKEN'),
    metricsTenants: metricsTenants(read('PLINTH_METRICS_TENANTS')),
    apiHosts: [...new Set([...read('PLINTH_API_HOSTS').split(',').map((h) => h.trim().toLowerCase()).filter(Boolean), host.toLowerCase()])],
    shutdownTimeoutMs: integer('PLINTH_SHUTDOWN_TIMEOUT_MS', 0, 600_000),
    bodyLimitBytes: integer('PLINTH_BODY_LIMIT_BYTES', 1, 1024 ** 3),
    moduleDirs: moduleDirsFrom(read('PLINTH_MODULE_DIRS')),
    modules: moduleList('PLINTH_MODULES'),
    defaultModules: moduleList('PLINTH_DEFAULT_MODULES'),
    strictModules: flag('PLINTH_STRICT_MODULES'),
    moduleRegisterTimeoutMs: integer('PLINTH_MODULE_REGISTER_TIMEOUT_MS', 1, 600_000),
    jwt,
    jobs: flag('PLINTH_JOBS'),
    jobsConcurrency: integer('PLINTH_JOBS_CONCURRENCY', 1, 100),
    jobsPollMs: integer('PLINTH_JOBS_POLL_MS', 10, 600_000),
    jobsLockTimeoutMs: integer('PLINTH_JOBS_LOCK_TIMEOUT_MS', 1000, 86_400_000),
    deprecations,
  }
  // Each tenant's share: half the pool by default. A tenant may borrow past it while the pool has
  // clients free, and the reserve (a fifth of the pool) serves tenants within their share while
  // others borrow. DB_TENANT_POOL_MAX=0: no sharing rules at all (one tenant per deployment).
  config.dbTenantPoolMax = read('DB_TENANT_POOL_MAX') === '' ? Math.max(1, Math.floor(config.dbPoolMax / 2)) : integer('DB_TENANT_POOL_MAX', 0, 1000)
  config.dbPoolReserve = read('DB_POOL_RESERVE') === '' ? Math.max(1, Math.round(config.dbPoolMax / 5)) : integer('DB_POOL_RESERVE', 0, 1000)
  if (config.dbTenantPoolMax === 0) config.dbPoolReserve = 0
  const tenantConnections = read('PLINTH_TENANT_CONNECTIONS')
  if (tenantConnections === '') config.tenantConnections = databaseUrl ? 'login' : 'shared'
  else if (tenantConnections === 'login' || tenantConnections === 'shared') config.tenantConnections = tenantConnections
  else problems.push(`PLINTH_TENANT_CONNECTIONS must be login or shared (got "${tenantConnections}")`)
  if (!databaseUrl && config.tenantConnections === 'login') {
    problems.push('PLINTH_TENANT_CONNECTIONS=login needs DATABASE_URL: the embedded database has one login (docs/security.md)')
  }
  if (config.tenantSecret !== undefined && config.tenantSecret.length < 32) problems.push('PLINTH_TENANT_SECRET must be at least 32 characters long')
  if (config.metricsToken !== undefined && config.metricsToken.length < 24) problems.push('PLINTH_METRICS_TOKEN must be at least 24 characters long')
  if (problems.length > 0) throw new ConfigError(problems)
  return config
}
