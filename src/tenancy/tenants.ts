// Tenant lifecycle: create (schema + tenant migrations, all or nothing), list, suspend, resume and
// drop. The CLI and the admin API both call this; neither talks to sys_tenant on its own.
import { randomUUID } from 'node:crypto'
import pLimit from 'p-limit'
import type pg from 'pg'
import type { Logger } from 'pino'
import { HttpProblem, toProblem, type FieldError } from '../problems.ts'
import { recordChange, type ChangeFeed } from '../platform/db/changes.ts'
import { applyNewTenantModules, applyTenantFile, applyTenantFilesInTransaction, roleFor, stepsFromScratch, type MigrationSource } from './migrations.ts'
import { runScript, settleInOrder, type SchemaServer } from '../platform/db/scripts.ts'
import { listTenants, TENANT_COLUMNS, tenantByCode, tenantNotFound, type Tenant } from './registry.ts'
import { quoteIdent } from '../platform/db/sql-names.ts'
import { isTenantCode, roleForSchema, schemaForCode } from './schema-name.ts'
import { inTransaction } from '../platform/db/platform-transaction.ts'
import { appendAudit, type AuditEvent } from '../platform/audit/append.ts'
import type { TenantPool } from './transaction.ts'
import type { TenantLogins } from './tenant-login.ts'

export interface NewTenant {
  code: string
  name: string
  domain?: string | null
}

/** What createMany did with each entry of its list: created, or why not (the one error shape's fields). */
export interface BulkCreateReport {
  created: Tenant[]
  failed: { index: number; code: unknown; status: number; error: string; detail: string; errors?: FieldError[] }[]
}

export interface BulkCreateOptions {
  /** Tenants per transaction: one COMMIT and a handful of round trips for all of them. */
  batchSize?: number
  /** Transactions at once. DDL is PostgreSQL's CPU: more than its cores buys lock waits, not speed. */
  concurrency?: number
}

export interface TenantsOptions {
  pool: pg.Pool
  /** The migrations a new tenant gets: the host's own first, then each default module's. */
  migrationsForNewTenant: () => MigrationSource[]
  changes?: ChangeFeed
  /** Host names the API serves every tenant on (PLINTH_API_HOSTS): no tenant may claim one. */
  reservedHosts?: readonly string[]
  /** Where tenant schemas are made: on Citus, each is a distributed schema (schemaAndRole). */
  server: SchemaServer
  /**
   * In 'login' mode, tenant roles log in (with these passwords), and a new tenant's module files
   * run on its own login once its role exists (committed): the module steps run apart.
   */
  tenantPool?: TenantPool
  logins?: TenantLogins
  /** Where createMany tells why an entry failed when its report cannot (a migration's error). */
  log?: Pick<Logger, 'warn' | 'error'>
}

const DOMAIN = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/


/** An IPv4 literal, or any name whose last label is all digits: no tenant's host name. */
const IP_LITERAL = /(^|\.)\d+$/

export function validateNewTenant(input: Partial<NewTenant>, reservedHosts: readonly string[] = []): FieldError[] {
  const errors: FieldError[] = []
  if (!isTenantCode(input.code)) {
    errors.push({ path: '/code', message: 'must be 2 to 40 characters of a-z, 0-9 and -, starting with a letter' })
  }
  if (typeof input.name !== 'string' || input.name.trim().length === 0 || input.name.length > 200) {
    errors.push({ path: '/name', message: 'must be 1 to 200 characters' })
  }
  if (input.domain != null && (typeof input.domain !== 'string' || !DOMAIN.test(input.domain))) {
    errors.push({ path: '/domain', message: 'must be a lowercase host name such as acme.example.com' })
  } else if (input.domain != null && IP_LITERAL.test(input.domain)) {
    errors.push({ path: '/domain', message: 'must be a host name, not an IP address' })
  } else if (input.domain != null && reservedHosts.includes(input.domain)) {
    // Every tenant's callers reach the API on these: a tenant that claimed one would be every request's.
    errors.push({ path: '/domain', message: `must not be a host the API itself serves on (${reservedHosts.join(', ')})` })
  }
  return errors
}

export class Tenants {
  constructor(private readonly options: TenantsOptions) {}

  /**
   * `startsWith` (an import's): the migrations the tenant starts with in place of a new tenant's;
   * its creation is then audited by the import, as one event, not here.
   */
  async create(input: NewTenant, { startsWith }: { startsWith?: MigrationSource[] } = {}): Promise<Tenant> {
    const sources = startsWith ?? this.options.migrationsForNewTenant()
    const audited = startsWith === undefined
    const errors = validateNewTenant(input, this.options.reservedHosts)
    if (errors.length > 0) throw new HttpProblem(400, 'VALIDATION_FAILED', 'The tenant is invalid.', { errors })
    const schema = schemaForCode(input.code)
    const server = this.options.server
    // Modules' files run apart, after the tenant's role is committed: in 'login' mode, since they
    // run logged in as that role; on Citus, which keeps to one connection per worker and user in a
    // transaction, so files run as the host's role and as the tenant's cannot share one.
    const apart = server === 'citus' || this.loginMode ? sources.filter((s) => s.source !== 'host') : []
    const together = sources.filter((s) => !apart.includes(s))
    await this.loginsReady()
    const tenant = await inTransaction(this.options.pool, async (client) => {
      const role = roleForSchema(await tenantRolePrefix(client), schema)
      const login = await this.loginClause(role)
      const { rows } = await client.query<Tenant>(
        `INSERT INTO public.sys_tenant (code, name, domain, schema_name, role_name) VALUES ($1, $2, $3, $4, $5) RETURNING ${TENANT_COLUMNS}`,
        [input.code, input.name.trim(), input.domain ?? null, schema, role],
      )
      const created = rows[0]
      await runScript(client, schemaAndRole(schema, role, server, login), server)
      for (const source of together) await applyTenantFilesInTransaction(client, created, source, server)
      await recordChange(client, 'tenant', created.id)
      if (apart.length === 0) await completeCreation(client, created, sources, audited)
      return created
    }).catch((err) => {
      if (err?.code === '23505' || err?.code === '42P06' || err?.code === '42710') {
        const field = /domain/.test(err.constraint ?? err.detail ?? '') ? 'domain' : 'code'
        throw tenantExists(field)
      }
      throw err
    })
    if (apart.length > 0) await this.applyModulesApart(tenant, apart, audited)
    await this.options.changes?.announce('tenant', tenant.id)
    return tenant
  }

  /**
   * A new tenant's module files, once its role is committed, then the modules enabled. Still all
   * or nothing: a tenant whose modules could not be set up is dropped. Until they are enabled, the
   * modules' routes answer 404 for it.
   * - On PostgreSQL ('login' mode): every file in one transaction of the tenant's own login, and
   *   their ledger rows with the modules enabled in one of the platform's (a handful of round trips).
   * - On Citus: each file in its own transaction, as migrate applies them (schemaAndRole says why).
   * The tenant's creation is audited in the transaction that enables its modules, where it completes.
   */
  private async applyModulesApart(tenant: Tenant, sources: MigrationSource[], audited = true) {
    try {
      if (this.options.server === 'postgres' && this.options.tenantPool) {
        await applyNewTenantModules(this.options.pool, this.options.tenantPool, tenant, sources, (client) => completeCreation(client, tenant, sources, audited))
        return
      }
      for (const source of sources) {
        for (const step of stepsFromScratch(source)) {
          await applyTenantFile(this.options.pool, tenant, source.source, step, this.options.server, this.options.tenantPool, false)
        }
      }
      await inTransaction(this.options.pool, async (client) => {
        await recordChange(client, 'tenant', tenant.id)
        await completeCreation(client, tenant, sources, audited)
      })
    } catch (err) {
      // Never audited as created, so not audited as dropped: no row tells of it.
      await this.dropTenant(tenant.code, { audited: false }).catch((dropError) =>
        this.options.log?.error({ err: dropError, tenant: tenant.code }, 'a tenant whose modules failed to set up could not be dropped'),
      )
      throw err
    }
  }

  /**
   * Creates many tenants: each all or nothing, as create() makes it, but batchSize of them per
   * transaction, their rows written with one statement per table and their schemas, roles and
   * migrations sent as one script. A batch that fails is rolled back and its tenants created one
   * at a time, so each failure is told exactly and costs no other tenant its place.
   */
  async createMany(inputs: NewTenant[], options: BulkCreateOptions = {}): Promise<BulkCreateReport> {
    const { batchSize = 25, concurrency = 2 } = options
    const report: BulkCreateReport = { created: [], failed: [] }
    const fail = (index: number, code: unknown, err: unknown) => {
      const problem = toProblem(err)
      if (problem.status >= 500) this.options.log?.error({ err, tenant: code }, 'tenant not created')
      report.failed.push({ index, code, status: problem.status, error: problem.code, detail: problem.detail, ...(problem.options.errors ? { errors: problem.options.errors } : {}) })
    }
    const valid: { index: number; input: NewTenant }[] = []
    const claimed = new Set<string>()
    inputs.forEach((input, index) => {
      const errors = validateNewTenant(input ?? {}, this.options.reservedHosts)
      if (errors.length > 0) return fail(index, input?.code, new HttpProblem(400, 'VALIDATION_FAILED', 'The tenant is invalid.', { errors }))
      const taken = [input.code, input.domain].find((key) => key != null && claimed.has(key))
      if (taken) return fail(index, input.code, new HttpProblem(409, 'TENANT_EXISTS', `The list names ${JSON.stringify(taken)} twice.`))
      claimed.add(input.code)
      if (input.domain) claimed.add(input.domain)
      valid.push({ index, input })
    })
    // Codes and domains already taken fail here, not by failing their batch: running the same list
    // again after a partial import costs one query, not a fallback per batch.
    const { rows: taken } = await this.options.pool.query<{ code: string; domain: string | null }>(
      'SELECT code, domain FROM public.sys_tenant WHERE code = ANY($1) OR domain = ANY($2)',
      [valid.map((e) => e.input.code), valid.flatMap((e) => (e.input.domain ? [e.input.domain] : []))],
    )
    const takenCodes = new Set(taken.map((r) => r.code))
    const takenDomains = new Set(taken.map((r) => r.domain))
    const fresh = valid.filter(({ index, input }) => {
      const field = takenCodes.has(input.code) ? 'code' : input.domain && takenDomains.has(input.domain) ? 'domain' : undefined
      if (field) fail(index, input.code, tenantExists(field))
      return !field
    })
    const batches: (typeof valid)[] = []
    for (let i = 0; i < fresh.length; i += batchSize) batches.push(fresh.slice(i, i + batchSize))
    const sources = this.options.migrationsForNewTenant()
    // In 'login' mode a batch makes schemas, roles and the host's tables; each tenant's module
    // files then run on its own login (create() says why).
    const batchSources = this.loginMode ? sources.filter((s) => s.source === 'host') : sources
    const moduleSources = this.loginMode ? sources.filter((s) => s.source !== 'host') : []
    const limit = pLimit(Math.max(1, concurrency))
    // Before any batch holds a connection (with concurrency at the pool's size, a batch that
    // then asked for the secret would wait for a connection none of them gives back).
    await this.loginsReady()
    const provision = async (batch: (typeof valid)[number][]) => {
      // On Citus each tenant is created on its own (create() says why).
      const created =
        this.options.server === 'postgres'
          ? await inTransaction(this.options.pool, (client) =>
              provisionBatch(client, batch.map((e) => e.input), batchSources, (role) => this.loginClause(role), { complete: moduleSources.length === 0 }),
            ).catch(() => null)
          : null
      if (created) {
        for (const [i, tenant] of created.entries()) {
          if (moduleSources.length > 0) {
            try {
              await this.applyModulesApart(tenant, moduleSources)
            } catch (err) {
              fail(batch[i].index, tenant.code, err)
              continue
            }
          }
          report.created.push(tenant)
          await this.options.changes?.announce('tenant', tenant.id)
        }
        return
      }
      // Which of them failed, and why: one at a time, each in its own transaction.
      for (const { index, input } of batch) {
        await this.create(input).then(
          (tenant) => void report.created.push(tenant),
          (err) => fail(index, input.code, err),
        )
      }
    }
    await Promise.all(batches.map((batch) => limit(() => provision(batch))))
    report.failed.sort((a, b) => a.index - b.index)
    return report
  }

  /** The login secret loaded, in 'login' mode: loginClause then takes no connection of its own. */
  private async loginsReady() {
    if (this.loginMode) await this.options.logins?.ready()
  }

  private get loginMode() {
    return this.options.tenantPool?.clients.mode === 'login'
  }

  /** How a new tenant role may log in: with its derived password in 'login' mode, not at all otherwise. */
  private async loginClause(role: string): Promise<string> {
    if (this.loginMode && this.options.logins) return `LOGIN NOINHERIT PASSWORD ${await this.options.logins.verifierLiteral(role)}`
    return this.options.server === 'citus' ? 'LOGIN' : 'NOLOGIN'
  }

  list(): Promise<Tenant[]> {
    return listTenants(this.options.pool)
  }

  get(code: string): Promise<Tenant> {
    return tenantByCode(this.options.pool, code)
  }

  suspend(code: string) {
    return this.setStatus(code, 'suspended')
  }

  resume(code: string) {
    return this.setStatus(code, 'active')
  }

  /** Drops the tenant's schema and every row about it. `confirm` must repeat the code. */
  async drop(code: string, confirm: string | undefined): Promise<Tenant> {
    if (confirm !== code) {
      throw new HttpProblem(400, 'CONFIRMATION_REQUIRED', `Dropping a tenant deletes all its data; confirm by repeating its code (${code}).`)
    }
    return this.dropTenant(code, { audited: true })
  }

  /** Drops a tenant an import created and could not finish: never audited, as it never was. */
  discard(code: string): Promise<Tenant> {
    return this.dropTenant(code, { audited: false })
  }

  /**
   * Finishes an import, in one transaction: `work` (the access it brings or keeps), the modules the
   * archive had disabled disabled, and, when it replaces a live tenant, the swap: the live one's
   * row deleted and its schema and role dropped, the imported one given its code. Until COMMIT the
   * live tenant serves; after it, the imported one. Audited as one event (`event`).
   */
  async completeImport(
    created: Tenant,
    { code, name, domain, replacing, disabledModules, event, work }: {
      code: string
      name: string
      domain: string | null
      replacing: Tenant | null
      disabledModules: string[]
      event: AuditEvent
      work: (client: pg.PoolClient) => Promise<void>
    },
  ): Promise<Tenant> {
    const tenant = await inTransaction(this.options.pool, async (client) => {
      await work(client)
      if (replacing) {
        const { rows } = await client.query<Tenant>(`DELETE FROM public.sys_tenant WHERE id = $1 RETURNING ${TENANT_COLUMNS}`, [replacing.id])
        if (!rows[0]) throw tenantNotFound(replacing.code)
        await runScript(client, dropSchemaAndRole(rows[0].schema, rows[0].role), this.options.server)
        await client.query(DISCARD_JOBS, [replacing.id])
        await recordChange(client, 'tenant', replacing.id)
      }
      const { rows } = await client.query<Tenant>(
        `UPDATE public.sys_tenant SET code = $2, name = $3, domain = $4 WHERE id = $1 RETURNING ${TENANT_COLUMNS}`,
        [created.id, code, name, domain],
      )
      if (disabledModules.length > 0) {
        await client.query('UPDATE public.sys_tenant_module SET enabled = false WHERE tenant_id = $1 AND module_id = ANY($2)', [created.id, disabledModules])
      }
      await recordChange(client, 'tenant', created.id)
      await appendAudit(client, event)
      return rows[0]
    }).catch((err) => {
      if (err?.code === '23505') throw tenantExists(/domain/.test(err.constraint ?? err.detail ?? '') ? 'domain' : 'code')
      throw err
    })
    if (replacing) await this.options.changes?.announce('tenant', replacing.id)
    await this.options.changes?.announce('tenant', tenant.id)
    return tenant
  }

  private async dropTenant(code: string, { audited }: { audited: boolean }): Promise<Tenant> {
    const tenant = await inTransaction(this.options.pool, async (client) => {
      const { rows } = await client.query<Tenant>(`DELETE FROM public.sys_tenant WHERE code = $1 RETURNING ${TENANT_COLUMNS}`, [code])
      if (!rows[0]) throw tenantNotFound(code)
      await runScript(client, dropSchemaAndRole(rows[0].schema, rows[0].role), this.options.server)
      await client.query(DISCARD_JOBS, [rows[0].id])
      await recordChange(client, 'tenant', rows[0].id)
      if (audited) await appendAudit(client, { action: 'tenant.dropped', target: code, tenant: code, changes: { schema: rows[0].schema } })
      return rows[0]
    })
    await this.options.changes?.announce('tenant', tenant.id)
    return tenant
  }

  private async setStatus(code: string, status: Tenant['status']): Promise<Tenant> {
    const tenant = await inTransaction(this.options.pool, async (client) => {
      const { rows } = await client.query<Tenant>(
        `UPDATE public.sys_tenant SET status = $2 WHERE code = $1 RETURNING ${TENANT_COLUMNS}`,
        [code, status],
      )
      if (!rows[0]) throw tenantNotFound(code)
      await recordChange(client, 'tenant', rows[0].id)
      await appendAudit(client, { action: status === 'suspended' ? 'tenant.suspended' : 'tenant.resumed', target: code, tenant: code, changes: { status } })
      return rows[0]
    })
    await this.options.changes?.announce('tenant', tenant.id)
    return tenant
  }
}

/**
 * Provisions a batch of valid tenants in the caller's transaction, in four round trips whatever
 * its size: their sys_tenant rows; one script of every tenant's schema, role and migration files
 * (the same statements create() sends one by one, under the same roles; no text of the request
 * is in it: names come from validated codes); then the migration ledger, module rows and change
 * records in one statement.
 */
async function provisionBatch(
  client: pg.PoolClient,
  inputs: NewTenant[],
  sources: MigrationSource[],
  loginClause: (role: string) => Promise<string>,
  { complete }: { complete: boolean },
): Promise<Tenant[]> {
  const prefix = await tenantRolePrefix(client)
  const schemas = inputs.map((input) => schemaForCode(input.code))
  const { rows } = await client.query<Tenant>(
    `INSERT INTO public.sys_tenant (id, code, name, domain, schema_name, role_name)
     SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
     RETURNING ${TENANT_COLUMNS}`,
    [inputs.map(() => randomUUID()), inputs.map((i) => i.code), inputs.map((i) => i.name.trim()), inputs.map((i) => i.domain ?? null), schemas, schemas.map((schema) => roleForSchema(prefix, schema))],
  )
  const scripts = await Promise.all(rows.map(async (tenant) => tenantScript(tenant, sources, await loginClause(tenant.role))))
  await client.query(scripts.join('\n'))
  const files = sources.flatMap((source) => source.files.map((file) => ({ source: source.source, ...file })))
  const modules = moduleIds(sources)
  const eachTenant = <T>(values: T[]) => rows.flatMap(() => values)
  const ids = rows.map((t) => t.id)
  await client.query(
    `WITH ledger AS (
       INSERT INTO public.sys_tenant_migration (tenant_id, source, name, checksum)
       SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[])
     ), modules AS (
       INSERT INTO public.sys_tenant_module (tenant_id, module_id) SELECT * FROM unnest($5::uuid[], $6::text[])
     )
     INSERT INTO public.sys_change (topic, key) SELECT 'tenant', unnest($7::text[])`,
    [
      rows.flatMap((t) => files.map(() => t.id)),
      eachTenant(files.map((f) => f.source)),
      eachTenant(files.map((f) => f.name)),
      eachTenant(files.map((f) => f.checksum)),
      rows.flatMap((t) => modules.map(() => t.id)),
      eachTenant(modules),
      ids,
    ],
  )
  // Audited here when nothing of theirs is left to do (in 'login' mode their modules' files run after).
  if (complete) for (const tenant of rows) await appendAudit(client, creationEvent(tenant, sources))
  return rows
}

/** One tenant's schema, role and migration files as one script, each file under the role create() uses. */
function tenantScript(tenant: Tenant, sources: MigrationSource[], login: string): string {
  const schema = quoteIdent(tenant.schema)
  const parts = [schemaAndRole(tenant.schema, tenant.role, 'postgres', login) + ';']
  for (const source of sources) {
    if (source.files.length === 0) continue
    parts.push(`SET LOCAL search_path TO ${schema}, public; ${roleFor(tenant, source.source)};`)
    // A file may end in a line comment: the newline keeps the next statement out of it.
    for (const step of stepsFromScratch(source)) parts.push(`${step.sql}\n;`)
  }
  parts.push('SET LOCAL ROLE NONE; SET LOCAL search_path TO public;')
  return parts.join('\n')
}

/**
 * A tenant's schema and its role. A schema or role left behind by something else is not ours to
 * take over. The role is a member of nothing; the platform's login joins it (GRANT ... TO
 * CURRENT_USER), so that it may SET ROLE to it in 'shared' mode and drop what it owns. The role's
 * comment names this database: role names are the server's, and `plinth doctor` finds the roles
 * whose database is gone by it.
 *
 * On Citus the schema is a distributed schema whatever the server's default, so its tables live
 * together on one worker and a transaction that names them is routed there. The coordinator
 * reaches that worker as the current role, the tenant's, which therefore logs in
 * (docs/scale-out.md says how to confine it).
 */
function schemaAndRole(schema: string, role: string, server: SchemaServer, login: string): string {
  const citus = server === 'citus'
  return `${citus ? 'SET LOCAL citus.enable_schema_based_sharding TO on;\n' : ''}CREATE SCHEMA ${quoteIdent(schema)};
    CREATE ROLE ${quoteIdent(role)} ${login};
    SELECT ${TAG_ROLE}(${quoteLiteral(role)});
    GRANT ${quoteIdent(role)} TO CURRENT_USER;
    GRANT USAGE, CREATE ON SCHEMA ${quoteIdent(schema)} TO ${quoteIdent(role)}`
}

/** A dropped tenant's queued jobs go with it (migrations/public/010_jobs.sql). */
const DISCARD_JOBS = 'SELECT public.sys_job_discard($1)'

/** public.sys_tag_tenant_role(role) (migration public/006): comments the role with this database's name. */
const TAG_ROLE = 'public.sys_tag_tenant_role'

const quoteLiteral = (text: string) => `'${text.replaceAll("'", "''")}'`

/**
 * Drops a tenant's schema and role. DROP OWNED takes with it whatever else the role owns or was
 * granted in this database (a grant another tenant's role made to it would otherwise keep the
 * role, and so the drop, from going through). The role's sessions, on every host (idle in their
 * pools of tenant logins), are ended: PostgreSQL drops a role that still has sessions, and those
 * would go on as a role of that name that no longer exists, so a tenant created again with the
 * same code was served by them and refused its own schema. The platform may end them: it is a
 * member of every tenant's role.
 */
function dropSchemaAndRole(schema: string, role: string): string {
  return `DROP SCHEMA IF EXISTS ${quoteIdent(schema)} CASCADE;
    DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = ${quoteLiteral(role)}) THEN EXECUTE 'DROP OWNED BY ${quoteIdent(role)}'; END IF; END $$;
    SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity WHERE usename = ${quoteLiteral(role)} AND pid <> pg_catalog.pg_backend_pid();
    DROP ROLE IF EXISTS ${quoteIdent(role)}`
}

/**
 * Where a new tenant is complete: its default modules enabled (every source but the host's), and
 * its creation audited, last. Both statements are sent together (one round trip).
 */
async function completeCreation(client: pg.PoolClient, tenant: Tenant, sources: MigrationSource[], audited: boolean) {
  const modules = moduleIds(sources)
  await settleInOrder(
    modules.length > 0 ? client.query('INSERT INTO public.sys_tenant_module (tenant_id, module_id) SELECT $1, unnest($2::text[])', [tenant.id, modules]) : Promise.resolve(),
    audited ? appendAudit(client, creationEvent(tenant, sources)) : Promise.resolve(),
  )
}

/** The modules among a new tenant's migration sources: every one but the host's. */
const moduleIds = (sources: MigrationSource[]) => sources.filter((s) => s.source !== 'host').map((s) => s.source)

function creationEvent(tenant: Tenant, sources: MigrationSource[]) {
  const modules = moduleIds(sources)
  return { action: 'tenant.created', target: tenant.code, tenant: tenant.code, changes: { name: tenant.name, domain: tenant.domain, schema: tenant.schema, modules } }
}

/** This database's prefix for tenant role names (migration public/004). */
async function tenantRolePrefix(client: pg.PoolClient): Promise<string> {
  const { rows } = await client.query<{ value: string }>(`SELECT value FROM public.sys_setting WHERE name = 'tenant_role_prefix'`)
  return rows[0].value
}

function tenantExists(field: 'code' | 'domain') {
  return new HttpProblem(409, 'TENANT_EXISTS', `A tenant with this ${field} already exists.`)
}

