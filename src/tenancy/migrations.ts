// Applies SQL migration files, each once, each in its own transaction, recorded with a checksum.
//
// Public migrations (migrations/public) run once per database, each under a lock on the ledger
// table (transaction-scoped, so it holds through PgBouncer in transaction mode): hosts starting
// together apply each file exactly once. Tenant migrations (migrations/tenant, and
// later each module's) are recorded in public.sys_tenant_migration, so finding what is pending across
// every tenant is one query on `public` and never a visit to each schema.
import type pg from 'pg'
import { MigrationError, type Baseline, type MigrationFile } from './migration-files.ts'
import { quoteIdent, quoteUuid } from '../platform/db/sql-names.ts'
import { runScript, settleInOrder, type SchemaServer } from '../platform/db/scripts.ts'
import { recordChange } from '../platform/db/changes.ts'
import { appendAudit } from '../platform/audit/append.ts'
import { inTransaction, type TransactionEnd } from '../platform/db/platform-transaction.ts'
import { TenantTransaction, type TenantPool } from './transaction.ts'

/** A named, ordered list of tenant migrations: the host's own (`host`) or a module's (its id). */
export interface MigrationSource {
  source: string
  files: MigrationFile[]
  /** What a tenant that has none of the files gets in place of the first ones (readBaseline). */
  baseline?: Baseline
}

/** What one transaction applies to a tenant: a file, or a baseline that stands for several. */
export interface MigrationStep {
  /** As messages name it: the file's name, or baseline/<name>. */
  label: string
  sql: string
  /** The ledger rows it writes. */
  records: MigrationFile[]
}

const FIRST_MIGRATION_LOCK = 7_201_947_305_110_001n

/** A tenant step that failed, named by its source and label. */
function stepFailed(source: string, step: MigrationStep, err: unknown): MigrationError {
  return new MigrationError(`migration ${source}/${step.label} failed: ${(err as Error).message}`, 'MIGRATION_FAILED', step.label, { cause: err })
}

export const fileStep = (file: MigrationFile): MigrationStep => ({ label: file.name, sql: file.sql, records: [file] })

/** A tenant that has none of the source's files: its baseline in place of the files it covers, then the rest. */
export function stepsFromScratch(source: MigrationSource): MigrationStep[] {
  const { baseline } = source
  if (!baseline) return source.files.map(fileStep)
  return [
    { label: `baseline/${baseline.file.name}`, sql: baseline.file.sql, records: baseline.covers },
    ...source.files.slice(baseline.covers.length).map(fileStep),
  ]
}

/**
 * Applies pending public migrations; returns the names it applied. Each step is a transaction that
 * first takes a transaction-scoped advisory lock: it holds through PgBouncer's transaction pooling,
 * where a session lock would be taken on one server connection and released on another. Under the
 * lock the ledger is read again, so two hosts starting together apply each file exactly once.
 */
export async function migratePublic(pool: pg.Pool, files: MigrationFile[]): Promise<string[]> {
  const { rows: ledger } = await pool.query<{ exists: boolean }>(`SELECT to_regclass('public.sys_migration') IS NOT NULL AS exists`)
  if (!ledger[0].exists) {
    await inTransaction(pool, async (client) => {
      await client.query(`SELECT pg_advisory_xact_lock(${FIRST_MIGRATION_LOCK})`)
      await client.query(`CREATE TABLE IF NOT EXISTS public.sys_migration (
        name text PRIMARY KEY,
        checksum text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now())`)
    })
  }
  const applied = new Map<string, string>(
    (await pool.query<{ name: string; checksum: string }>('SELECT name, checksum FROM public.sys_migration')).rows.map((r) => [r.name, r.checksum]),
  )
  for (const file of files) {
    const recorded = applied.get(file.name)
    if (recorded !== undefined && recorded !== file.checksum) {
      throw new MigrationError(`migration public/${file.name} was edited after it was applied (checksum differs); add a new migration instead`, 'MIGRATION_EDITED', file.name)
    }
  }
  const done: string[] = []
  for (const file of files) {
    if (applied.has(file.name)) continue
    const ran = await lockedTransaction(pool, async (client) => {
      const { rowCount } = await client.query('SELECT 1 FROM public.sys_migration WHERE name = $1', [file.name])
      if (rowCount) return false
      await client.query(file.sql)
      await client.query('INSERT INTO public.sys_migration (name, checksum) VALUES ($1, $2)', [file.name, file.checksum])
      return true
    }).catch((err) => {
      throw new MigrationError(`migration ${file.name} failed: ${(err as Error).message}`, 'MIGRATION_FAILED', file.name, { cause: err })
    })
    if (ran) done.push(file.name)
  }
  return done
}

/**
 * `run` in a transaction holding the public-migration lock: the ledger table locked against other
 * writers (readers go on). A lock on a table tenant roles have no privilege on, so no module code
 * can take it and hold every host's start hostage, as it could an advisory lock's key.
 */
function lockedTransaction<T>(pool: pg.Pool, run: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  return inTransaction(pool, async (client) => {
    await client.query('LOCK TABLE public.sys_migration IN EXCLUSIVE MODE')
    return run(client)
  })
}

/**
 * Applies a source's files (or its baseline and the files after it) inside a transaction the caller
 * already opened, with search_path set to the tenant's schema. Used when a tenant is created: all of
 * it commits, or none of it does.
 */
export async function applyTenantFilesInTransaction(
  client: pg.PoolClient,
  tenant: MigratedTenant,
  source: MigrationSource,
  server: SchemaServer,
) {
  await client.query(`SET LOCAL search_path TO ${quoteIdent(tenant.schema)}, public; ${roleFor(tenant, source.source)}`)
  for (const step of stepsFromScratch(source)) {
    try {
      await runScript(client, step.sql, server)
    } catch (err) {
      throw stepFailed(source.source, step, err)
    }
  }
  // The ledger is the host's: written as the login role.
  await client.query('SET LOCAL ROLE NONE')
  if (source.files.length > 0) {
    await client.query(
      `INSERT INTO public.sys_tenant_migration (tenant_id, source, name, checksum)
       SELECT $1, $2, f.name, f.checksum FROM unnest($3::text[], $4::text[]) AS f(name, checksum)`,
      [tenant.id, source.source, source.files.map((f) => f.name), source.files.map((f) => f.checksum)],
    )
  }
}

/** The tenant a file is applied to: its schema, and the role a module's files run under. */
export interface MigratedTenant {
  id: string
  schema: string
  role: string
}

/**
 * A module's migrations run as the tenant's role, so the tables they make are the tenant's and
 * they can touch nothing outside its schema; the host's own run as the platform's role. This is
 * the SET ROLE form, for a tenant's first files inside the transaction that creates its role (in
 * 'shared' mode, and in a batch of new tenants): everywhere else a module's files run on a
 * connection logged in as the tenant (applyTenantFile).
 */
export function roleFor(tenant: MigratedTenant, source: string): string {
  return source === 'host' ? 'SET LOCAL ROLE NONE' : `SET LOCAL ROLE ${quoteIdent(tenant.role)}`
}

export interface PendingTenantMigration {
  tenantId: string
  code: string
  schema: string
  role: string
  source: string
  name: string
  /** Set when the file was applied with another checksum: it was edited. */
  appliedChecksum: string | null
}

// Files pending for some tenant, tenant by tenant (see findPendingTenantMigrations).
const PENDING = `WITH f AS MATERIALIZED (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[]) AS f(source, name, checksum, ord)
  ), pending_somewhere AS MATERIALIZED (
    SELECT f.* FROM f
     WHERE $5::uuid IS NOT NULL
        OR (CASE WHEN f.source = 'host' THEN (SELECT count(*) FROM public.sys_tenant)
                 ELSE (SELECT count(*) FROM public.sys_tenant_module p WHERE p.module_id = f.source AND p.enabled) END)
           <> (SELECT count(*) FROM public.sys_tenant_migration m
                WHERE m.source = f.source AND m.name = f.name AND m.checksum = f.checksum
                  AND (f.source = 'host' OR EXISTS (SELECT 1 FROM public.sys_tenant_module p
                                                      WHERE p.tenant_id = m.tenant_id AND p.module_id = f.source AND p.enabled)))
  )
  SELECT t.id AS "tenantId", t.code, t.schema_name AS schema, t.role_name AS role, f.source, f.name, m.checksum AS "appliedChecksum"
    FROM pending_somewhere f
    JOIN public.sys_tenant t ON $5::uuid IS NULL OR t.id = $5
    LEFT JOIN public.sys_tenant_migration m ON m.tenant_id = t.id AND m.source = f.source AND m.name = f.name
   WHERE (m.name IS NULL OR m.checksum <> f.checksum)
     AND (f.source = 'host' OR EXISTS (SELECT 1 FROM public.sys_tenant_module p
                                         WHERE p.tenant_id = t.id AND p.module_id = f.source AND p.enabled))
   ORDER BY t.code, f.ord`

/**
 * Every tenant file not yet applied (or applied with another checksum), across all tenants, in one
 * query on `public`. `host` files apply to every tenant; a module's to the tenants that enabled it.
 *
 * A file is looked for tenant by tenant only when it is pending somewhere: when the tenants that
 * should have it outnumber the ledger rows that record it with its checksum for them. Those are two
 * counts per file (the ledger's from its index, migration public/005), so a migrate with nothing to
 * do reads no row per tenant.
 */
export async function findPendingTenantMigrations(pool: pg.Pool, sources: MigrationSource[], tenantId?: string): Promise<PendingTenantMigration[]> {
  const files = sources.flatMap((s) => s.files.map((f) => ({ source: s.source, ...f })))
  if (files.length === 0) return []
  // Without JIT: with thousands of tenants the planner's estimate passes jit_above_cost, and
  // compiling the plan (with inlining and optimisation, past 500,000) takes several times longer
  // than running it (docs/benchmarks-history.md, "Why the code is so"). Sent with the query, in its round trip.
  return inTransaction(
    pool,
    async (client, end) => {
      const [{ rows }] = await settleInOrder(
        client.query<PendingTenantMigration>(
          PENDING,
          [files.map((f) => f.source), files.map((f) => f.name), files.map((f) => f.checksum), files.map((_, i) => i), tenantId ?? null],
        ),
        end.commit(),
      )
      return rows
    },
    { begin: 'BEGIN READ ONLY; SET LOCAL jit = off' },
  )
}

/**
 * Applies one step (a pending file, or a baseline) to one tenant in its own transaction. A lock on
 * the tenant's row keeps two hosts from applying the same file twice (a row lock, which module
 * code cannot take: tenant roles have no privilege on sys_tenant); the ledger is re-read under it.
 *
 * The host's files run on the platform's connection, with the ledger: two round trips (the lock
 * and the ledger read travel together, then the step, its ledger rows and COMMIT). A module's files
 * run, with `tenantPool` in 'login' mode, on a connection logged in as the tenant, in a transaction
 * of their own, committed just before the platform's that records them: a step that fails records
 * nothing; the window in which the step could commit and its record not is the gap between two
 * COMMITs, and a file found applied but unrecorded fails the next migrate for that tenant, loudly.
 *
 * The step is audited (migration.applied) last in the platform's transaction, under `audit.tenant`
 * (the tenant's code); a new tenant's files are not, for its creation is the row that tells of them.
 */
export async function applyTenantFile(
  pool: pg.Pool,
  tenant: MigratedTenant,
  source: string,
  step: MigrationStep,
  server: SchemaServer,
  tenantPool: TenantPool | undefined,
  audit: { tenant: string } | false,
): Promise<'applied' | 'already'> {
  const asTenant = source !== 'host' && tenantPool?.clients.mode === 'login'
  const begin = `BEGIN; SELECT 1 FROM public.sys_tenant WHERE id = ${quoteUuid(tenant.id)} FOR NO KEY UPDATE${asTenant ? '' : `; SET LOCAL search_path TO ${quoteIdent(tenant.schema)}, public`}`
  const apply = async (client: pg.PoolClient, end: TransactionEnd): Promise<'applied' | 'already'> => {
    const existing = await client.query<{ name: string; checksum: string }>(
      'SELECT name, checksum FROM public.sys_tenant_migration WHERE tenant_id = $1 AND source = $2 AND name = ANY($3)',
      [tenant.id, source, step.records.map((f) => f.name)],
    )
    // Another host applied it a moment ago (or, for a baseline, began the history file by file).
    if (existing.rows.length > 0) {
      await end.rollback()
      const edited = existing.rows.find((row) => row.checksum !== step.records.find((f) => f.name === row.name)?.checksum)
      if (edited) {
        throw new MigrationError(`migration ${source}/${edited.name} was edited after it was applied (checksum differs)`, 'MIGRATION_EDITED', edited.name)
      }
      return 'already'
    }
    const record = () =>
      client.query(
        `INSERT INTO public.sys_tenant_migration (tenant_id, source, name, checksum)
         SELECT $1, $2, f.name, f.checksum FROM unnest($3::text[], $4::text[]) AS f(name, checksum)`,
        [tenant.id, source, step.records.map((f) => f.name), step.records.map((f) => f.checksum)],
      )
    const audited = async () => {
      if (!audit) return
      const files = step.records.map((f) => f.name)
      await appendAudit(client, { action: 'migration.applied', target: `${source}/${step.label}`, tenant: audit.tenant, module: source === 'host' ? null : source, changes: { files } })
    }
    if (asTenant) {
      await record()
      await runAsTenant(tenantPool!, tenant, [{ source, step }], server)
      await audited()
      return 'applied'
    }
    // A file may end in a line comment: the newline keeps what follows out of it.
    const ran = runScript(client, `${roleFor(tenant, source)};\n${step.sql}\n;SET LOCAL ROLE NONE`, server)
    await settleInOrder(ran, record(), audited(), end.commit())
    return 'applied'
  }
  try {
    return await inTransaction(pool, apply, { begin, server })
  } catch (err) {
    if (err instanceof MigrationError) throw err
    throw stepFailed(source, step, err)
  }
}

/**
 * A new tenant's module files, all from scratch, in one transaction of the tenant's own login,
 * inside the platform's transaction that records them: their ledger rows and the tenant's change,
 * then, once the files ran, what `complete` writes (the modules enabled, the creation audited: last,
 * for the audit's lock is held from its row to COMMIT).
 */
export async function applyNewTenantModules(
  pool: pg.Pool,
  tenantPool: TenantPool,
  tenant: MigratedTenant,
  sources: MigrationSource[],
  complete: (client: pg.PoolClient) => Promise<unknown>,
) {
  const steps = sources.flatMap((source) => stepsFromScratch(source).map((step) => ({ source: source.source, step })))
  const files = sources.flatMap((source) => source.files.map((file) => ({ source: source.source, file })))
  await inTransaction(pool, async (client, end) => {
    await settleInOrder(
      client.query(
        `INSERT INTO public.sys_tenant_migration (tenant_id, source, name, checksum)
         SELECT $1, f.source, f.name, f.checksum FROM unnest($2::text[], $3::text[], $4::text[]) AS f(source, name, checksum)`,
        [tenant.id, files.map((f) => f.source), files.map((f) => f.file.name), files.map((f) => f.file.checksum)],
      ),
      recordChange(client, 'tenant', tenant.id),
    )
    await runAsTenant(tenantPool, tenant, steps, 'postgres')
    await settleInOrder(complete(client), end.commit())
  })
}

/**
 * Runs module files in one transaction of the tenant's own login (each file a query of its own,
 * pipelined, so a failure names its file), without statement or lock timeouts: an index may take
 * long to build. The caller holds the platform's transaction that records them, and commits it
 * after this one: a file that fails records nothing; the window in which a file could commit and
 * its record not is the gap between the two COMMITs.
 */
async function runAsTenant(tenantPool: TenantPool, tenant: MigratedTenant, steps: { source: string; step: MigrationStep }[], server: SchemaServer) {
  const unbounded: TenantPool = { ...tenantPool, share: null, observer: undefined, statementTimeoutMs: 0, lockTimeoutMs: 0 }
  const tx = await TenantTransaction.begin(unbounded, tenant)
  try {
    await settleInOrder(
      tx.beginFailure().then((failure) => {
        if (failure) throw failure
      }),
      // A file may end in a line comment: the newline keeps what follows out of it.
      ...steps.map(({ source, step }) => runScript(tx.client, `${step.sql}\n;`, server).catch((err) => Promise.reject(stepFailed(source, step, err)))),
    )
    await tx.commit()
  } finally {
    await tx.rollback()
  }
}
